"""Reads github-sim's stats (stdin) and its installations (file argv[1]); prints, for each
installation, "org=N": the requests that carried its token, in all or (with argv[2]) to one path.
Used by compose-test.sh to see which credential the services sent."""
import json
import sys

stats = json.load(sys.stdin)
installations = json.load(open(sys.argv[1]))
if len(sys.argv) > 2:
    counts = stats.get("by_path_credential", {}).get(sys.argv[2], {})
else:
    counts = stats.get("by_credential", {})
pairs = []
for installation in installations:
    label = "installation-%s" % installation["id"]
    pairs.append("%s=%s" % (installation["org"], counts.get(label, 0)))
print(" ".join(pairs))
