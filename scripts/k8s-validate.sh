#!/usr/bin/env bash
# k8s-validate.sh: validates deploy/k8s/ offline against the Kubernetes API schemas.
#
# Uses kubernetes-validate (PyPI; it ships the OpenAPI schemas of every Kubernetes release, so no
# cluster and no network beyond PyPI are needed), installed once into a cached virtualenv.
# --strict rejects unknown fields (a misspelt key is an error, not silently ignored). Also checks
# that kustomization.yaml lists every manifest and that what the manifests reference exists.
# Env: K8S_VERSION (default 1.33.0), HUBCACHE_CACHE_DIR (default ~/.cache/hubcache).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$HUBCACHE_ROOT"

K8S_VERSION="${K8S_VERSION:-1.33.0}"
VALIDATOR_VERSION=1.37.0
VENV="${HUBCACHE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hubcache}/k8s-validate-$VALIDATOR_VERSION"

ensure_commands python3:python3
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate $VALIDATOR_VERSION into $VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 keeps venv in a separate package.
    rm -rf "$VENV"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing python3-venv (apt-get)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$VALIDATOR_VERSION" \
    || { rm -rf "$VENV"; die "pip install kubernetes-validate failed"; }
fi

mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
[ ${#manifests[@]} -gt 0 ] || die "no manifests in deploy/k8s"

log "kubernetes-validate --strict (Kubernetes $K8S_VERSION): ${manifests[*]}"
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "${manifests[@]}"

log "cross-references (kustomization, selectors, config names, HPA target)"
"$VENV/bin/python" - "${manifests[@]}" <<'PY'
import sys, yaml
docs = {}
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        if d:
            docs[(d["kind"], d["metadata"]["name"])] = (path, d)
kust = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
errors = []
listed = {"deploy/k8s/" + r for r in kust["resources"]}
for path in sorted({p for p, _ in docs.values()} - listed - {"deploy/k8s/secret.example.yaml"}):
    errors.append(f"{path} is not listed in kustomization.yaml")
for r in listed:
    if r not in {p for p, _ in docs.values()}:
        errors.append(f"kustomization.yaml lists {r}, which is missing")
images = {i["name"] for i in kust.get("images", [])}
for (kind, name), (path, d) in docs.items():
    if kind != "Deployment":
        continue
    spec = d["spec"]
    labels = spec["template"]["metadata"]["labels"]
    for k, v in spec["selector"]["matchLabels"].items():
        if labels.get(k) != v:
            errors.append(f"{path}: selector {k}={v} does not match the pod labels")
    for c in spec["template"]["spec"]["containers"]:
        if c["image"].split(":")[0] not in images:
            errors.append(f"{path}: image {c['image']} is not in kustomization.yaml images")
        for src in c.get("envFrom", []):
            if "configMapRef" in src and ("ConfigMap", src["configMapRef"]["name"]) not in docs:
                errors.append(f"{path}: ConfigMap {src['configMapRef']['name']} does not exist")
            if "secretRef" in src and ("Secret", src["secretRef"]["name"]) not in docs:
                errors.append(f"{path}: Secret {src['secretRef']['name']} is not documented in secret.example.yaml")
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
            errors.append(f"{path}: container {c['name']} must have a read-only root and no privilege escalation")
        if "resources" not in c:
            errors.append(f"{path}: container {c['name']} has no resources")
    if not spec["template"]["spec"].get("securityContext", {}).get("runAsNonRoot"):
        errors.append(f"{path}: pods must run as non-root")
for (kind, name), (path, d) in docs.items():
    if kind == "HorizontalPodAutoscaler":
        t = d["spec"]["scaleTargetRef"]
        if (t["kind"], t["name"]) not in docs:
            errors.append(f"{path}: HPA target {t['kind']}/{t['name']} does not exist")
    if kind == "Service":
        sel = d["spec"]["selector"]
        if not any(k == "Deployment" and all(dd["spec"]["template"]["metadata"]["labels"].get(a) == b for a, b in sel.items())
                   for (k, _), (_, dd) in docs.items()):
            errors.append(f"{path}: Service {name} selects no Deployment's pods")
for e in errors:
    print("  FAIL", e, file=sys.stderr)
print(f"k8s: {len(docs)} objects checked, {len(errors)} problems")
sys.exit(1 if errors else 0)
PY
