#!/usr/bin/env bash
# Deployment files (deploy/): the Dockerfile, compose file and Kubernetes manifests
# parse, and their probes, ports, volumes and flags match what the binary serves:
# /healthz and /readyz exist, the port is the config's, every path the config
# names lies on a mounted volume, the flags exist in `mmfuse serve --help`, and
# the binary itself accepts the shipped config (`serve --check`).
# Usage: deploy_files.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

"$MMFUSE" serve --help >"$TMP/help.txt" 2>&1
check "serve --help" $?

/usr/bin/python3 - "$ROOT" "$TMP/help.txt" <<'PYEOF'
import json, re, shlex, sys
import yaml
root, help_text = sys.argv[1], open(sys.argv[2]).read()
D = root + "/deploy"
errors = []
def need(cond, msg):
    if not cond: errors.append(msg)

cfg = yaml.safe_load(open(D + "/mmfuse.yaml"))
port = cfg["port"]
config_paths = [p for p in cfg["models"].values()] + [cfg["index"]["dir"], cfg["data_dir"]] + cfg["index"].get("import_roots", [])
openapi = json.load(open(root + "/docs/api/openapi.json"))["paths"]
need("/healthz" in openapi and "/readyz" in openapi, "openapi lacks /healthz or /readyz")

def flags_known(args):
    for a in args:
        if a.startswith("--"):
            need(re.search(r"(^|\s)" + re.escape(a.split("=")[0]) + r"\b", help_text) is not None,
                 f"flag {a} is not in `mmfuse serve --help`")

def under(path, mounts):
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)

# Dockerfile
df = open(D + "/Dockerfile").read()
froms = re.findall(r"^FROM\s+(\S+)", df, re.M)
need(len(froms) >= 2, "Dockerfile is not multi-stage")
need(froms[0].startswith("debian:12") and froms[-1].startswith("debian:12"), f"Dockerfile bases {froms} are not Debian 12")
users = re.findall(r"^USER\s+(\S+)", df, re.M)
need(users and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile runs as root")
need(re.search(r"^EXPOSE\s+%d\b" % port, df, re.M), f"Dockerfile does not EXPOSE {port}")
hc = re.search(r"HEALTHCHECK.*?CMD\s+(.*)", df, re.S)
need(hc and f"127.0.0.1:{port}/healthz" in hc.group(1), "Dockerfile HEALTHCHECK does not probe /healthz on the config port")
vols = json.loads(re.search(r"^VOLUME\s+(\[.*\])", df, re.M).group(1))
for p in config_paths:
    need(under(p, vols), f"Dockerfile: config path {p} is not on a VOLUME {vols}")
entry = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])", df, re.M).group(1))
cmd = json.loads(re.search(r"^CMD\s+(\[.*\])", df, re.M).group(1))
need(entry[-1] == "serve", "ENTRYPOINT is not mmfuse serve")
flags_known(cmd)
need(re.search(r"COPY deploy/mmfuse.yaml\s+" + re.escape(cmd[cmd.index("--config") + 1]), df), "CMD --config is not the copied config")

# docker-compose
comp = yaml.safe_load(open(D + "/docker-compose.yml"))
svc = comp["services"]["mmfuse"]
need("mosquitto" in comp["services"], "compose has no mosquitto service")
need(any(str(p).endswith(f":{port}") for p in svc["ports"]), f"compose does not publish {port}")
flags_known(svc["command"])
mounts = [v.split(":")[1] for v in svc["volumes"]]
for p in config_paths:
    need(under(p, mounts), f"compose: config path {p} is not mounted ({mounts})")
conf = svc["command"][svc["command"].index("--config") + 1]
need(conf in mounts, f"compose: {conf} is not mounted")
need(any(f"127.0.0.1:{port}/healthz" in x for x in svc["healthcheck"]["test"]), "compose healthcheck is not /healthz")

# Kubernetes
docs = {}
import glob
for f in sorted(glob.glob(D + "/k8s/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        if d: docs.setdefault(d["kind"], []).append(d)
for kind in ("Deployment", "Service", "PersistentVolumeClaim", "HorizontalPodAutoscaler", "ConfigMap"):
    need(kind in docs, f"k8s: no {kind}")
dep = docs["Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
named = {p["name"]: p["containerPort"] for p in c["ports"]}
need(named.get("http") == port, f"k8s containerPort {named} is not {port}")
def probe(name):
    p = c[name]["httpGet"]
    return p["path"], named.get(p["port"], p["port"])
need(probe("livenessProbe") == ("/healthz", port), f"liveness probe {probe('livenessProbe')}")
need(probe("readinessProbe") == ("/readyz", port), f"readiness probe {probe('readinessProbe')}")
flags_known(c["args"])
kmounts = [m["mountPath"] for m in c["volumeMounts"]]
for p in config_paths:
    need(under(p, kmounts), f"k8s: config path {p} is not mounted ({kmounts})")
need(c["args"][c["args"].index("--config") + 1].startswith(tuple(kmounts)), "k8s: --config file is not mounted")
need(pod["securityContext"]["runAsNonRoot"] is True, "k8s: not runAsNonRoot")
claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
need(claims <= {p["metadata"]["name"] for p in docs["PersistentVolumeClaim"]}, f"k8s: PVCs {claims} not all defined")
svc_ports = docs["Service"][0]["spec"]["ports"]
need(any(p["targetPort"] in ("http", port) for p in svc_ports), "k8s Service does not target the http port")
need(docs["Service"][0]["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "k8s Service selector differs")
need(docs["HorizontalPodAutoscaler"][0]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "HPA target")
cm = docs["ConfigMap"][0]["data"]["mmfuse.yaml"]
need(yaml.safe_load(cm) == cfg, "k8s ConfigMap mmfuse.yaml differs from deploy/mmfuse.yaml")

for e in errors: print("deploy:", e)
sys.exit(1 if errors else 0)
PYEOF
check "deploy files agree with the binary" $?

# The shipped config, with its volumes pointed at scratch folders, passes the binary's own validation.
mkdir -p "$TMP/models" "$TMP/data/photos" "$TMP/web"
ln -s "$FIX/clip/models/clip-tiny-quickgelu-p32" "$TMP/models/clip"
sed -e "s#/models/#$TMP/models/#g" -e "s#/data/#$TMP/data/#g" -e "s#/usr/local/share/mmfuse/web#$TMP/web#" \
  "$ROOT/deploy/mmfuse.yaml" >"$TMP/mmfuse.yaml"
"$MMFUSE" serve --config "$TMP/mmfuse.yaml" --check >"$TMP/check.json"
check "serve --check accepts deploy/mmfuse.yaml" $?
grep -q '"port":8080' "$TMP/check.json"
check "config port 8080" $?

finish deploy_files
