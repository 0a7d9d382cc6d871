#!/bin/sh
# cargo-recipe.sh SRC DEST: copies the workspace's Cargo manifests and lock file from SRC to DEST,
# with a stub (`fn main() {}`) for every target file cargo needs to find when it reads them.
#
# Used by deploy/Dockerfile (stage `recipe`), as cargo-chef's `prepare` would be: building DEST
# compiles exactly the dependencies, in a layer that stays cached until a manifest or the lock
# file changes. Only the targets a manifest names or cargo infers by convention (src/main.rs,
# src/lib.rs, build.rs, [[bin]]/[[test]]/[[bench]]/[[example]] entries) are stubbed, so adding a
# test or source file does not invalidate the dependency layer.
set -eu
src="${1:?usage: cargo-recipe.sh SRC DEST}"
dest="${2:?usage: cargo-recipe.sh SRC DEST}"
cd "$src"

# targets MANIFEST: the target files (relative to its directory) MANIFEST declares, as candidates.
targets() {
  echo src/main.rs
  echo src/lib.rs
  echo build.rs
  awk '
    function value(line) { sub(/^[^"]*"/, "", line); sub(/".*/, "", line); return line }
    function flush(dir) {
      if (kind == "") return
      if (path != "") print path
      else if (kind == "lib") print "src/lib.rs"
      else if (name != "") {
        dir = kind == "bin" ? "src/bin" : kind == "test" ? "tests" : kind == "bench" ? "benches" : "examples"
        print dir "/" name ".rs"; print dir "/" name "/main.rs"
      }
      kind = ""; name = ""; path = ""
    }
    /^[[:space:]]*\[/ {
      flush()
      if ($0 ~ /^[[:space:]]*\[\[(bin|test|bench|example)\]\]/) { kind = $0; gsub(/[^a-z]/, "", kind) }
      else if ($0 ~ /^[[:space:]]*\[lib\]/) kind = "lib"
      next
    }
    kind != "" && /^[[:space:]]*name[[:space:]]*=/ { name = value($0) }
    kind != "" && /^[[:space:]]*path[[:space:]]*=/ { path = value($0) }
    /^[[:space:]]*build[[:space:]]*=[[:space:]]*"/ { print value($0) }
    END { flush() }
  ' "$1"
}

find . -path ./target -prune -o -type f \( -name Cargo.toml -o -name Cargo.lock \
  -o -name rust-toolchain.toml -o -name rust-toolchain -o -path ./.cargo/config.toml \) -print |
  while read -r f; do
    mkdir -p "$dest/$(dirname "$f")"
    cp "$f" "$dest/$f"
  done

find . -path ./target -prune -o -type f -name Cargo.toml -print | while read -r manifest; do
  dir="$(dirname "$manifest")"
  targets "$manifest" | sort -u | while read -r target; do
    # Only files the real tree has: cargo would fail on the real tree otherwise.
    [ -f "$dir/$target" ] || continue
    mkdir -p "$dest/$dir/$(dirname "$target")"
    echo 'fn main() {}' >"$dest/$dir/$target"
  done
done
