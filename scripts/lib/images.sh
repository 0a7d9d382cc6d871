# Local base images for machines whose Docker engine cannot pull (no registry). Source it, or run
# it (`scripts/lib/images.sh`) to prepare the images.
# shellcheck shell=bash
#
# deploy/Dockerfile and deploy/docker-compose.yml name official images by tag (rust, debian slim,
# redis, nginx). On a machine with a registry Docker pulls them and nothing here runs. Without one,
# ensure_base_images creates each missing image under exactly that tag, from Debian's packages:
#
#   debian:bookworm-slim   debootstrap --variant=minbase of bookworm, imported (the shared base)
#   rust:<ver>-bookworm    base + build-essential, pkg-config, git, curl + this machine's Rust
#                          toolchain <ver> copied to /usr/local (CARGO_HOME=/usr/local/cargo on PATH)
#   redis:7-bookworm       base + redis-server; WORKDIR /data, CMD redis-server (as the official)
#   nginx:<ver>-bookworm   base + nginx, curl; reads /etc/nginx/conf.d/*.conf, logs to stdout,
#                          CMD nginx -g 'daemon off;' (as the official)
#
# The tags are read from the committed files (the build args are checked against the Dockerfile's
# ARG defaults), so they never drift. Existing images are kept: that is the cache between runs;
# HUBCACHE_REBUILD_BASE_IMAGES=1 recreates them. Packages come from the Debian mirror this
# machine's apt uses (override: HUBCACHE_DEBIAN_MIRROR, HUBCACHE_DEBIAN_SECURITY_MIRROR). The CA
# certificates this machine added to its trust store (/usr/local/share/ca-certificates, e.g. for
# a TLS-inspecting egress proxy) are trusted in the stand-ins too. These images stand in for the
# official ones only so the committed files can be tested unchanged here; never push them.

if [ -z "${HUBCACHE_ROOT:-}" ]; then
  # shellcheck source=scripts/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

HUBCACHE_DOCKERFILE="$HUBCACHE_ROOT/deploy/Dockerfile"
HUBCACHE_COMPOSE_FILE="$HUBCACHE_ROOT/deploy/docker-compose.yml"
# Output of the image builds (shown when one fails).
HUBCACHE_IMAGES_LOG="${TMPDIR:-/tmp}/hubcache-base-images.log"

# dockerfile_arg NAME: the default value of `ARG NAME=...` in deploy/Dockerfile.
dockerfile_arg() {
  sed -n "s/^ARG $1=\(.*\)$/\1/p" "$HUBCACHE_DOCKERFILE" | head -n1
}

# compose_default VAR: the default of `${VAR:-...}` in deploy/docker-compose.yml.
compose_default() {
  sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" "$HUBCACHE_COMPOSE_FILE" | head -n1
}

# apt_mirror SUITE_PATTERN: the first URI this machine's apt config uses for a suite matching the
# pattern (deb822 .sources files and one-line sources.list both understood).
apt_mirror() {
  local pattern="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v pat="$pattern" '
      /^[[:space:]]*$/ { if (uri != "" && suites ~ pat && types ~ /(^| )deb( |$)/) { print uri; exit } uri=""; suites=""; types="" ; next }
      /^URIs:/ { uri=$2 } /^Suites:/ { $1=""; suites=$0 } /^Types:/ { $1=""; types=$0 }
      END { if (uri != "" && suites ~ pat && types ~ /(^| )deb( |$)/) print uri }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v pat="$pattern" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i+1) ~ pat) print $i }' "$f"
  done
}

# debian_mirrors: sets DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR.
debian_mirrors() {
  DEBIAN_MIRROR="${HUBCACHE_DEBIAN_MIRROR:-$(apt_mirror '(^| )bookworm( |$)' | head -n1)}"
  DEBIAN_SECURITY_MIRROR="${HUBCACHE_DEBIAN_SECURITY_MIRROR:-$(apt_mirror 'bookworm-security' | head -n1)}"
  [ -n "$DEBIAN_MIRROR" ] || die "no Debian bookworm mirror in this machine's apt config: set HUBCACHE_DEBIAN_MIRROR"
  DEBIAN_MIRROR="${DEBIAN_MIRROR%/}"
  DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR%/}"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# want_image TAG: true when TAG must be (re)created.
want_image() {
  if image_exists "$1" && [ "${HUBCACHE_REBUILD_BASE_IMAGES:-0}" != 1 ]; then
    log "base image $1: present (cached)"
    return 1
  fi
  return 0
}

# build_image TAG DOCKERFILE_TEXT: builds TAG from a Dockerfile with an empty context. Host network:
# these Dockerfiles run apt-get against the host's mirror.
build_image() {
  local tag="$1" text="$2" t0=$SECONDS
  log "base image $tag: building"
  if ! printf '%s\n' "$text" | nice docker build --network host -t "$tag" - >"$HUBCACHE_IMAGES_LOG" 2>&1; then
    tail -n 30 "$HUBCACHE_IMAGES_LOG" >&2
    die "building base image $tag failed"
  fi
  log "base image $tag: built in $((SECONDS - t0)) s"
}

# slim_image TAG: a minimal Debian bookworm root filesystem (debootstrap), imported as TAG.
slim_image() {
  local tag="$1" rootfs t0=$SECONDS
  want_image "$tag" || return 0
  ensure_commands debootstrap:debootstrap
  debian_mirrors
  rootfs="$(mktemp -d -t hubcache-rootfs.XXXXXX)"
  log "base image $tag: debootstrap bookworm (minbase) from the apt mirror"
  if ! nice debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR" \
    >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    rm -rf "$rootfs" "$rootfs.log"
    die "debootstrap failed"
  fi
  # The CA certificates this machine added to its own trust store (e.g. of a TLS-inspecting egress
  # proxy) are trusted in the stand-ins too, or cargo could not reach crates.io from a build.
  if [ -n "$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | head -n1)" ]; then
    cp -r /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates in the rootfs failed"
  fi
  {
    echo "deb $DEBIAN_MIRROR bookworm main"
    echo "deb $DEBIAN_MIRROR bookworm-updates main"
    [ -n "$DEBIAN_SECURITY_MIRROR" ] && echo "deb $DEBIAN_SECURITY_MIRROR bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  # As the official slim image: no apt caches or lists, no docs or man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . \
    | docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "debootstrap bookworm minbase (hubcache local stand-in)" - "$tag" >/dev/null \
    || die "docker import of $tag failed"
  rm -rf "$rootfs" "$rootfs.log"
  log "base image $tag: imported in $((SECONDS - t0)) s"
}

# rust_toolchain_dir VERSION: the directory of this machine's Rust toolchain VERSION (e.g. 1.95).
rust_toolchain_dir() {
  local want="$1" dir ver candidates=()
  local home="${RUSTUP_HOME:-$HOME/.rustup}"
  for dir in "$home"/toolchains/"$want"*-x86_64-unknown-linux-gnu "$(rustc --print sysroot 2>/dev/null)"; do
    [ -x "$dir/bin/rustc" ] && candidates+=("$(readlink -f "$dir")")
  done
  for dir in "${candidates[@]}"; do
    ver="$("$dir/bin/rustc" -V | awk '{print $2}')"
    case "$ver" in "$want" | "$want".*) echo "$dir"; return 0 ;; esac
  done
  return 1
}

# rust_image TAG: debian slim + C toolchain + this machine's Rust toolchain, laid out as the
# official image (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, cargo on PATH).
rust_image() {
  local tag="$1" slim="$2" version dir ctx
  want_image "$tag" || return 0
  version="$(printf '%s' "${tag#*:}" | sed -n 's/^\([0-9][0-9.]*\).*/\1/p')"
  [ -n "$version" ] || die "cannot read a Rust version from the tag $tag"
  dir="$(rust_toolchain_dir "$version")" \
    || die "no Rust $version toolchain on this machine for $tag (rustup toolchain install $version)"
  ctx="$(mktemp -d -t hubcache-rustctx.XXXXXX)"
  cat >"$ctx/Dockerfile" <<EOF
FROM $slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      build-essential pkg-config git curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$version
COPY toolchain/bin/ /usr/local/rustup/toolchains/local/bin/
COPY toolchain/lib/ /usr/local/rustup/toolchains/local/lib/
RUN mkdir -p /usr/local/cargo/bin \\
 && for b in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do \\
      [ -e /usr/local/rustup/toolchains/local/bin/\$b ] && ln -s /usr/local/rustup/toolchains/local/bin/\$b /usr/local/cargo/bin/\$b; \\
    done; true
RUN cargo --version && rustc --version
WORKDIR /
CMD ["bash"]
EOF
  mkdir -p "$ctx/toolchain"
  # Hard links when on the same file system, else a copy; docs (share/) are left out, as in the
  # official image's minimal profile.
  cp -al "$dir/bin" "$dir/lib" "$ctx/toolchain/" 2>/dev/null || cp -a "$dir/bin" "$dir/lib" "$ctx/toolchain/"
  local t0=$SECONDS
  log "base image $tag: building from $slim + the Rust toolchain in $dir"
  if ! nice docker build --network host -t "$tag" "$ctx" >"$HUBCACHE_IMAGES_LOG" 2>&1; then
    tail -n 30 "$HUBCACHE_IMAGES_LOG" >&2
    rm -rf "$ctx"
    die "building $tag failed"
  fi
  rm -rf "$ctx"
  log "base image $tag: built in $((SECONDS - t0)) s"
}

# ensure_base_images: every image deploy/ names, created when missing. Prints nothing on stdout.
ensure_base_images() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed"
  local slim rust redis nginx
  slim="$(compose_default RUNTIME_IMAGE)"
  rust="$(compose_default RUST_IMAGE)"
  redis="$(compose_default REDIS_IMAGE)"
  nginx="$(compose_default NGINX_IMAGE)"
  if [ -z "$slim" ] || [ -z "$rust" ] || [ -z "$redis" ] || [ -z "$nginx" ]; then
    die "could not read the image tags from deploy/docker-compose.yml"
  fi
  if [ "$slim" != "$(dockerfile_arg RUNTIME_IMAGE)" ] || [ "$rust" != "$(dockerfile_arg RUST_IMAGE)" ]; then
    die "the base image tags of deploy/docker-compose.yml (build args) and deploy/Dockerfile (ARG defaults) differ"
  fi
  case "$slim" in *bookworm*) ;; *) die "the local stand-ins are Debian bookworm; $slim is not" ;; esac

  slim_image "$slim"
  rust_image "$rust" "$slim"
  # As the official image's entrypoint: flags alone run redis-server, and without a config file
  # protected mode is off (else Redis refuses clients from other containers).
  want_image "$redis" && build_image "$redis" "FROM $slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data \\
 && printf '%s\\n' '#!/bin/sh' 'set -e' 'if [ \"\${1#-}\" != \"\$1\" ]; then set -- redis-server \"\$@\"; fi' \\
      'if [ \"\$1\" = redis-server ]; then set -- \"\$@\" --protected-mode no; fi' 'exec \"\$@\"' \\
      >/usr/local/bin/docker-entrypoint.sh && chmod 0755 /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT [\"docker-entrypoint.sh\"]
CMD [\"redis-server\"]"
  want_image "$nginx" && build_image "$nginx" "FROM $slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light curl ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \\
 && printf 'server {\\n  listen 80;\\n  location / { root /usr/share/nginx/html; index index.html; }\\n}\\n' >/etc/nginx/conf.d/default.conf \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD [\"nginx\", \"-g\", \"daemon off;\"]"
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  t0=$SECONDS
  ensure_base_images
  log "base images ready in $((SECONDS - t0)) s"
fi
