"""The Helm chart (charts/batch-scaler), checked on `helm lint` and on `helm template` output
parsed as YAML: RBAC modes, hardened containers, the service's arguments against the values,
the schema's refusals, deploy/ being what the chart renders, and the frontend's Dockerfile.

Run by tests/chart/run.sh (which fetches helm when it is not installed): HELM names the binary.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "batch-scaler"
HELM = os.environ.get("HELM", "helm")
VALUE_FILES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm(*args, check=True):
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=check)


def refused(*args):
    """The error `helm template` gives for these arguments; fails the test when it renders."""
    r = helm("template", "x", str(CHART), *args, check=False)
    if r.returncode == 0:
        raise AssertionError(f"rendered with {args}")
    return r.stderr


def render(*args, namespace="batch-scaler"):
    """The objects `helm template` renders, parsed."""
    out = helm("template", "batch-scaler", str(CHART), "-n", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def service_args(objects):
    deployment = next(
        o for o in kinds(objects, "Deployment")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "scaler"
    )
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


class Lint(unittest.TestCase):
    def test_lint_strict_for_the_defaults_and_every_value_file(self):
        self.assertGreaterEqual(len(VALUE_FILES), 5)
        for values in [None, *VALUE_FILES]:
            args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
            r = helm(*args, check=False)
            self.assertEqual(r.returncode, 0, f"{values}: {r.stdout}{r.stderr}")
            print(f"lint ok: {values.name if values else 'defaults'}: "
                  f"{len(render(*(['-f', str(values)] if values else [])))} objects")


class Rbac(unittest.TestCase):
    def test_cluster_wide_by_default(self):
        objects = render()
        self.assertEqual(len(kinds(objects, "ClusterRole")), 1)
        rules = kinds(objects, "ClusterRole")[0]["rules"]
        self.assertEqual(rules[0]["verbs"], ["get", "list", "watch", "patch"])
        self.assertEqual(rules[0]["resources"], ["horizontalrunnerautoscalers"])
        self.assertEqual(rules[1]["verbs"], ["get", "list", "watch"])
        self.assertNotIn("--watch-namespace", " ".join(service_args(objects)))

    def test_namespaced_mode_has_a_role_per_namespace_and_nothing_cluster_wide(self):
        objects = render("-f", str(CHART / "ci" / "namespaced-values.yaml"))
        self.assertEqual(kinds(objects, "ClusterRole"), [])
        self.assertEqual(kinds(objects, "ClusterRoleBinding"), [])
        roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in kinds(objects, "Role")}
        self.assertEqual(roles, {("ci", "batch-scaler"), ("prod", "batch-scaler"),
                                 ("batch-scaler", "batch-scaler-members")})
        bindings = kinds(objects, "RoleBinding")
        self.assertEqual(len(bindings), 3)
        for b in bindings:
            self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "batch-scaler",
                                              "namespace": "batch-scaler"}])
        self.assertIn("--watch-namespace=ci,prod", service_args(objects))


class Containers(unittest.TestCase):
    def test_every_container_runs_non_root_read_only_without_escalation(self):
        for values in [None, *VALUE_FILES]:
            objects = render(*(["-f", str(values)] if values else []))
            for d in kinds(objects, "Deployment"):
                pod = d["spec"]["template"]["spec"]
                self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
                for c in pod["containers"]:
                    sc = c["securityContext"]
                    where = f"{values}: {d['metadata']['name']}/{c['name']}"
                    self.assertTrue(sc["runAsNonRoot"], where)
                    self.assertTrue(sc["readOnlyRootFilesystem"], where)
                    self.assertFalse(sc["allowPrivilegeEscalation"], where)
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"], where)
                    self.assertIn("readinessProbe", c, where)


class Arguments(unittest.TestCase):
    def test_replicas_and_scale_out(self):
        objects = render("--set", "replicaCount=5")
        deployment = kinds(objects, "Deployment")[0]
        self.assertEqual(deployment["spec"]["replicas"], 5)
        self.assertIn("--peers=on", service_args(objects))
        env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
               for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        self.assertEqual(env, {"POD_NAME": "metadata.name", "POD_IP": "status.podIP",
                               "POD_NAMESPACE": "metadata.namespace"})
        self.assertIn("--peers=auto", service_args(render("--set", "replicaCount=1")))

    def test_tokens_are_generated_and_mounted(self):
        objects = render()
        secret = kinds(objects, "Secret")[0]
        self.assertEqual(set(secret["data"]), {"read", "produce", "peer", "tokens"})
        self.assertEqual(secret["metadata"]["annotations"]["helm.sh/resource-policy"], "keep")
        import base64
        lines = base64.b64decode(secret["data"]["tokens"]).decode().splitlines()
        self.assertEqual([l.split()[1] for l in lines], ["read", "produce", "peer"])
        self.assertIn("--auth-token-file=/etc/batch-scaler/tokens/tokens", service_args(objects))
        self.assertNotIn("--auth-token-file", " ".join(service_args(render("--set", "auth.enabled=false"))))

    def test_an_existing_token_secret_is_used_and_none_generated(self):
        objects = render("-f", str(CHART / "ci" / "tls-secret-values.yaml"))
        self.assertEqual(kinds(objects, "Secret"), [])
        pod = kinds(objects, "Deployment")[0]["spec"]["template"]["spec"]
        volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        self.assertEqual(volumes, {"tokens": "batch-scaler-tokens", "tls": "batch-scaler-tls"})

    def test_tls_from_a_secret_and_from_cert_manager(self):
        args = service_args(render("-f", str(CHART / "ci" / "tls-secret-values.yaml")))
        for a in ["--tls-cert=/etc/batch-scaler/tls/tls.crt", "--tls-key=/etc/batch-scaler/tls/tls.key",
                  "--tls-client-ca=/etc/batch-scaler/tls/ca.crt"]:
            self.assertIn(a, args)
        objects = render("-f", str(CHART / "ci" / "tls-cert-manager-values.yaml"))
        cert = kinds(objects, "Certificate")[0]
        self.assertEqual(cert["spec"]["secretName"], "batch-scaler-tls")
        self.assertEqual(cert["spec"]["issuerRef"]["kind"], "ClusterIssuer")
        self.assertIn("batch-scaler.batch-scaler.svc", cert["spec"]["dnsNames"])
        self.assertIn("batch-scaler.example.com", cert["spec"]["dnsNames"])
        self.assertIn("--tls-cert=/etc/batch-scaler/tls/tls.crt", service_args(objects))
        self.assertNotIn("--tls-client-ca=/etc/batch-scaler/tls/ca.crt", service_args(objects))

    def test_extra_args_and_env(self):
        objects = render("--set", "extraArgs={--dry-run}", "--set", "extraEnv[0].name=RUST_LOG",
                         "--set", "extraEnv[0].value=debug")
        self.assertEqual(service_args(objects)[-1], "--dry-run")
        env = kinds(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        self.assertIn({"name": "RUST_LOG", "value": "debug"}, env)

    def test_image_tag_defaults_to_the_crate_version(self):
        cargo = (ROOT / "Cargo.toml").read_text()
        version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        self.assertEqual(chart["appVersion"], version)
        image = kinds(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, f"batch-scaler:{version}")


class Frontend(unittest.TestCase):
    def test_frontend_with_an_ingress(self):
        objects = render("-f", str(CHART / "ci" / "frontend-ingress-values.yaml"))
        front = next(d for d in kinds(objects, "Deployment") if d["metadata"]["name"] == "batch-scaler-frontend")
        c = front["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("--target=batch-scaler.batch-scaler.svc:50051", c["args"])
        self.assertIn("--token-file=/etc/batch-scaler/tokens/produce", c["args"])
        self.assertIn("--default-duration=30m", c["args"])
        self.assertEqual(c["env"][0]["valueFrom"]["secretKeyRef"], {"name": "github-webhook", "key": "secret"})
        ingress = kinds(objects, "Ingress")[0]
        self.assertEqual(ingress["spec"]["ingressClassName"], "nginx")
        rule = ingress["spec"]["rules"][0]
        self.assertEqual(rule["host"], "ci.example.com")
        self.assertEqual(rule["http"]["paths"][0]["path"], "/webhook")
        self.assertEqual(ingress["spec"]["tls"][0]["secretName"], "webhook-tls")
        self.assertEqual(len(kinds(objects, "PodDisruptionBudget")), 2)

    def test_the_frontend_needs_its_webhook_secret(self):
        self.assertIn("frontend.webhookSecret.existingSecret", refused("--set", "frontend.enabled=true"))

    def test_the_dockerfile_installs_exactly_the_pinned_requirements_as_non_root(self):
        dockerfile = (ROOT / "examples" / "webhook-frontend" / "Dockerfile").read_text()
        lines = [l.strip() for l in dockerfile.splitlines() if l.strip() and not l.startswith("#")]
        installs = [l for l in lines if "pip install" in l]
        self.assertEqual(installs, ["RUN pip install -r /app/requirements.txt"])
        self.assertIn("COPY examples/webhook-frontend/requirements.txt /app/requirements.txt", lines)
        for req in (ROOT / "examples" / "webhook-frontend" / "requirements.txt").read_text().splitlines():
            if req.strip() and not req.startswith("#"):
                self.assertRegex(req, r"^[A-Za-z0-9_.\-\[\]]+==[0-9][^\s]*$", "pinned")
        user = [l for l in lines if l.startswith("USER ")]
        self.assertEqual(len(user), 1)
        self.assertNotIn(user[0].split()[1].split(":")[0], ("0", "root"))
        self.assertLess(lines.index(user[0]), len(lines) - 2, "USER before the entrypoint")


class Optional(unittest.TestCase):
    def test_service_monitor_and_network_policy_are_off_by_default(self):
        objects = render()
        self.assertEqual(kinds(objects, "ServiceMonitor") + kinds(objects, "NetworkPolicy"), [])
        self.assertEqual(kinds(objects, "CustomResourceDefinition"), [], "installCRD is off by default")

    def test_service_monitor_and_network_policy_on(self):
        objects = render("-f", str(CHART / "ci" / "monitoring-values.yaml"))
        monitor = kinds(objects, "ServiceMonitor")[0]
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")
        policy = kinds(objects, "NetworkPolicy")[0]
        grpc, metrics = policy["spec"]["ingress"]
        components = [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                      for p in grpc["from"] if "podSelector" in p]
        self.assertEqual(components, ["scaler", "frontend"])
        self.assertEqual(metrics["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                         "monitoring")

    def test_the_crd_only_when_asked_and_the_same_as_deploy(self):
        crds = kinds(render("--set", "installCRD=true"), "CustomResourceDefinition")
        self.assertEqual(len(crds), 1)
        self.assertEqual((CHART / "files" / "crd.yaml").read_text(), (ROOT / "deploy" / "crd.yaml").read_text())


class Schema(unittest.TestCase):
    def test_a_misspelled_key_is_refused_by_name(self):
        self.assertIn("replicaCout", refused("--set", "replicaCout=2"))
        self.assertIn("hots", refused("--set", "frontend.ingress.hots=a"))

    def test_a_wrong_type_is_refused_by_name(self):
        self.assertIn("/replicaCount", refused("--set", "replicaCount=three"))
        self.assertIn("/watchNamespaces", refused("--set-json", 'watchNamespaces="ci"'))


class FakeCluster:
    """Just enough of a Kubernetes API for `helm template --dry-run=server`: discovery of the
    kinds the chart renders, and GET of the Secrets it holds (what `lookup` reads)."""

    KINDS = {
        "v1": [("secrets", "Secret"), ("services", "Service"), ("serviceaccounts", "ServiceAccount")],
        "apps/v1": [("deployments", "Deployment")],
        "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
        "rbac.authorization.k8s.io/v1": [("clusterroles", "ClusterRole"), ("clusterrolebindings", "ClusterRoleBinding"),
                                         ("roles", "Role"), ("rolebindings", "RoleBinding")],
    }

    def __init__(self):
        self.secrets = {}
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = self.path.split("?")[0]
                parts = path.strip("/").split("/")
                if path == "/version":
                    return self.answer(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
                if path == "/api":
                    return self.answer(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
                if path == "/apis":
                    groups = [{"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                               "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                              for gv in cluster.KINDS if "/" in gv]
                    return self.answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
                gv = "v1" if path == "/api/v1" else path[len("/apis/"):]
                if gv in cluster.KINDS:
                    return self.answer(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                        {"name": n, "singularName": k.lower(), "namespaced": not k.startswith("Cluster"), "kind": k,
                         "verbs": ["get", "list", "create"]} for n, k in cluster.KINDS[gv]]})
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
                    secret = cluster.secrets.get((parts[3], parts[5]))
                    if secret:
                        return self.answer(200, secret)
                return self.answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "reason": "NotFound", "code": 404})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.kubeconfig = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.server.server_address[1]}"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
        }, self.kubeconfig)
        self.kubeconfig.close()

    def render(self):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig.name)
        out = subprocess.run([HELM, "template", "batch-scaler", str(CHART), "-n", "batch-scaler",
                              "--dry-run=server", "--disable-openapi-validation"],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise AssertionError(out.stderr)
        out = out.stdout
        return [d for d in yaml.safe_load_all(out) if d]

    def close(self):
        self.server.shutdown()
        os.unlink(self.kubeconfig.name)


class Upgrade(unittest.TestCase):
    def test_generated_tokens_survive_an_upgrade(self):
        cluster = FakeCluster()
        try:
            first = kinds(cluster.render(), "Secret")[0]
            again = kinds(cluster.render(), "Secret")[0]
            self.assertNotEqual(first["data"], again["data"], "no Secret yet: new random tokens each time")
            # Installed: the Secret is in the cluster (with the ownership Helm gives what it
            # installs), and an upgrade reads it back (lookup).
            first["metadata"]["annotations"].update({"meta.helm.sh/release-name": "batch-scaler",
                                                     "meta.helm.sh/release-namespace": "batch-scaler"})
            cluster.secrets[("batch-scaler", "batch-scaler-tokens")] = first
            upgraded = kinds(cluster.render(), "Secret")[0]
            self.assertEqual(upgraded["data"], first["data"])
        finally:
            cluster.close()


class Deploy(unittest.TestCase):
    def test_deploy_is_what_the_chart_renders(self):
        rendered = render("-f", str(ROOT / "deploy" / "values.yaml"))
        committed = [d for d in yaml.safe_load_all((ROOT / "deploy" / "batch-scaler.yaml").read_text()) if d]
        self.assertEqual(committed, rendered,
                         "deploy/batch-scaler.yaml is stale: render it again (command in deploy/values.yaml)")


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
