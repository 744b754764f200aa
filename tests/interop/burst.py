"""A matrix burst: N signed `workflow_job` `queued` deliveries posted to a webhook frontend at
once, each on its own connection as GitHub sends them, then every job's reservation read back
with GetTarget.

Prints one JSON summary line (answers by status, refused/reset/timed-out connections, answer
latency p50/p99/max, peak open connections, jobs reserved exactly once, the frontend's peak
RSS) and, with --check, `PASS name` / `FAIL name: why` lines for the interop script.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
import zlib

import grpc

sys.path.insert(0, os.environ["BS_GEN"])
from batchscaler.v1 import batchscaler_pb2 as pb  # noqa: E402
from batchscaler.v1 import batchscaler_pb2_grpc as rpc  # noqa: E402

GITHUB_TIMEOUT = 10.0


def repository(org: str, name: str) -> dict:
    """A repository object shaped like GitHub's (its size is most of a real payload's)."""
    full = f"{org}/{name}"
    api = f"https://api.github.com/repos/{full}"
    urls = {k: f"{api}/{k.removesuffix('_url')}" for k in (
        "forks_url", "keys_url", "collaborators_url", "teams_url", "hooks_url", "issue_events_url",
        "events_url", "assignees_url", "branches_url", "tags_url", "blobs_url", "git_tags_url",
        "git_refs_url", "trees_url", "statuses_url", "languages_url", "stargazers_url",
        "contributors_url", "subscribers_url", "subscription_url", "commits_url", "git_commits_url",
        "comments_url", "issue_comment_url", "contents_url", "compare_url", "merges_url",
        "archive_url", "downloads_url", "issues_url", "pulls_url", "milestones_url",
        "notifications_url", "labels_url", "releases_url", "deployments_url")}
    owner = {"login": org, "id": 9000, "node_id": "O_kgDOBurst", "type": "Organization",
             "avatar_url": "https://avatars.githubusercontent.com/u/9000?v=4", "site_admin": False}
    owner.update({k: f"https://api.github.com/users/{org}/{k.removesuffix('_url')}" for k in (
        "url", "html_url", "followers_url", "following_url", "gists_url", "starred_url",
        "subscriptions_url", "organizations_url", "repos_url", "events_url", "received_events_url")})
    return {"id": 424242, "node_id": "R_kgDOBurst", "name": name, "full_name": full, "private": True,
            "owner": owner, "html_url": f"https://github.com/{full}", "description": "matrix burst",
            "fork": False, "url": api, **urls, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z", "pushed_at": "2026-11-28T00:00:00Z",
            "git_url": f"git://github.com/{full}.git", "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"https://github.com/{full}.git", "svn_url": f"https://github.com/{full}",
            "homepage": None, "size": 1024, "stargazers_count": 0, "watchers_count": 0,
            "language": "Rust", "has_issues": True, "has_projects": False, "has_downloads": True,
            "has_wiki": False, "has_pages": False, "forks_count": 0, "mirror_url": None,
            "archived": False, "disabled": False, "open_issues_count": 0, "license": None,
            "allow_forking": False, "forks": 0, "open_issues": 0, "watchers": 0,
            "default_branch": "main"}


def payload(job_id: int, pool: str, repo: dict) -> bytes:
    full = repo["full_name"]
    job = {"id": job_id, "run_id": 900000 + job_id // 256, "workflow_name": "matrix",
           "head_branch": "main", "run_url": f"https://api.github.com/repos/{full}/actions/runs/1",
           "run_attempt": 1, "node_id": "CR_kwDOBurst", "head_sha": "9f3c1e2d4b5a69788796a5b4c3d2e1f0a9b8c7d6",
           "url": f"https://api.github.com/repos/{full}/actions/jobs/{job_id}",
           "html_url": f"https://github.com/{full}/actions/runs/1/job/{job_id}", "status": "queued",
           "conclusion": None, "created_at": "2026-11-28T10:00:00Z", "started_at": "2026-11-28T10:00:00Z",
           "completed_at": None, "name": f"test ({job_id})", "steps": [],
           "check_run_url": f"https://api.github.com/repos/{full}/check-runs/{job_id}",
           "labels": ["self-hosted", pool], "runner_id": None, "runner_name": None,
           "runner_group_id": None, "runner_group_name": None}
    body = {"action": "queued", "workflow_job": job, "repository": repo,
            "organization": {"login": repo["owner"]["login"], "id": 9000},
            "sender": {"login": "octocat", "id": 1, "type": "User"}}
    return json.dumps(body).encode()


def request(host: str, port: int, secret: bytes, body: bytes, delivery: str) -> bytes:
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    head = (f"POST /webhook HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: GitHub-Hookshot/burst\r\n"
            f"Content-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n"
            f"X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class Burst:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.open = 0
        self.peak_open = 0
        self.results = []  # (status or error, seconds)

    async def deliver(self, raw: bytes, wait: float):
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer = None
        try:
            async with asyncio.timeout(wait):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.open += 1
                self.peak_open = max(self.peak_open, self.open)
                writer.write(raw)
                await writer.drain()
                line = await reader.readline()
                if not line:
                    raise ConnectionResetError("closed without an answer")
                outcome = int(line.split()[1])
                await reader.read()  # the rest; the server closes (Connection: close)
        except ConnectionRefusedError:
            outcome = "refused"
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError, OSError):
            outcome = "reset"
        except TimeoutError:
            outcome = "timeout"
        finally:
            if writer is not None:
                self.open -= 1
                writer.close()
        self.results.append((outcome, loop.time() - started))


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def peak_rss_kib(pid: int):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def group_jobs(name: str) -> list:
    """The job ids a grouped reservation's name holds (README "Deep backlogs": `g1:`, base64url
    of deflated varints: repositories, then ids as gaps with their second and repository)."""
    body = name[len("g1:"):]
    raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), -15)
    pos = 1  # version

    def varint():
        nonlocal pos
        value, shift = 0, 0
        while True:
            b = raw[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    for _ in range(varint()):
        skip = varint()  # a repository's name
        pos += skip
    jobs, last = [], None
    for _ in range(varint()):
        gap = varint()
        last = gap if last is None else last + gap + 1
        varint(), varint()  # queued second (delta), repository
        jobs.append(str(last))
    for _ in range(varint()):
        n = varint()
        jobs.append(raw[pos:pos + n].decode())
        pos += n
        varint(), varint()
    return jobs


def reserved(target: str, namespace: str, pools: int, jobs: set) -> dict:
    """How many of `jobs` have exactly one reservation across the pools (named, or in a
    grouped one), how many none or more than one, and whether ARC's sum (Σ replicas) is the
    number of units held."""
    stub = rpc.BatchScalerStub(grpc.insecure_channel(target))
    counts = {}
    replicas, units, anonymous = 0, 0, 0
    for p in range(pools):
        t = stub.GetTarget(pb.TargetRef(namespace=namespace, name=f"pool-{p}"))
        units += t.reservation_units
        for r in t.capacity_reservations:
            replicas += r.replicas
            names = group_jobs(r.name) if r.name.startswith("g1:") else [r.name]
            if r.name.startswith("g1:"):
                anonymous += r.replicas - len(names)
            for n in names:
                counts[n] = counts.get(n, 0) + 1
    once = sum(1 for j in jobs if counts.get(j) == 1)
    missing = sum(1 for j in jobs if j not in counts)
    doubled = sum(1 for j in jobs if counts.get(j, 0) > 1)
    held = sum(counts.get(n, 0) for n in counts if n) + counts.get("", 0) + anonymous
    return {"reserved_once": once, "missing": missing, "doubled": doubled,
            "arc_sum": replicas, "reservation_units": units, "units_held": held}


async def run(args) -> dict:
    host, port = args.frontend.rsplit(":", 1)
    port = int(port)
    secret = args.secret.encode()
    run_tag = uuid.uuid4().hex[:8]
    repos = [repository(args.org, f"app-{p}") for p in range(args.pools)]
    jobs, raws = [], []
    for i in range(args.deliveries):
        job_id = args.first_job + i
        p = i % args.pools
        jobs.append(str(job_id))
        raws.append(request(host, port, secret, payload(job_id, f"pool-{p}", repos[p]), f"{run_tag}-{i}"))
    burst = Burst(host, port)
    started = time.monotonic()
    await asyncio.gather(*(burst.deliver(raw, args.wait) for raw in raws))
    took = time.monotonic() - started
    statuses = {}
    for outcome, _ in burst.results:
        statuses[str(outcome)] = statuses.get(str(outcome), 0) + 1
    ok = [s for o, s in burst.results if isinstance(o, int) and 200 <= o < 300]
    in_time = sum(1 for s in ok if s <= GITHUB_TIMEOUT)
    latencies = [s for o, s in burst.results if isinstance(o, int)]
    summary = {
        "deliveries": args.deliveries, "pools": args.pools,
        "answered_2xx_within_10s": in_time, "answers": statuses,
        "p50_s": round(percentile(latencies, 0.50) or 0, 3),
        "p99_s": round(percentile(latencies, 0.99) or 0, 3),
        "max_s": round(max(latencies, default=0), 3),
        "burst_s": round(took, 3), "peak_open_connections": burst.peak_open,
    }
    if args.target:
        summary.update(reserved(args.target, args.namespace, args.pools, set(jobs)))
    if args.frontend_pid:
        summary["frontend_peak_rss_mib"] = round((peak_rss_kib(args.frontend_pid) or 0) / 1024, 1)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frontend", required=True, help="HOST:PORT of the webhook frontend")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--pools", type=int, default=10, help="HRAs burst/pool-0… the jobs spread over")
    ap.add_argument("--namespace", default="burst")
    ap.add_argument("--org", default="burst-org")
    ap.add_argument("--first-job", type=int, default=7_000_000)
    ap.add_argument("--wait", type=float, default=30.0, help="seconds a delivery may take before it counts as timed out")
    ap.add_argument("--target", help="batch-scaler HOST:PORT: read every job's reservation back")
    ap.add_argument("--frontend-pid", type=int, help="report the frontend's peak RSS")
    ap.add_argument("--check", action="store_true", help="print PASS/FAIL lines")
    ap.add_argument("--min-connections", type=int, default=400)
    ap.add_argument("--max-rss-mib", type=float, default=256)
    args = ap.parse_args()
    try:
        import uvloop
        summary = uvloop.run(run(args))
    except ImportError:
        summary = asyncio.run(run(args))
    print("burst: " + json.dumps(summary), flush=True)
    if not args.check:
        return 0
    n = args.deliveries
    results = []

    def check(name, ok, why):
        results.append(ok)
        print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)

    check(f"burst: {n} deliveries at once, every one answered 2xx within 10 s",
          summary["answered_2xx_within_10s"] == n, json.dumps(summary))
    check(f"burst: at least {args.min_connections} connections open at once",
          summary["peak_open_connections"] >= args.min_connections, summary["peak_open_connections"])
    if args.target:
        check(f"burst: every job reserved exactly once (GetTarget)",
              summary["reserved_once"] == n, json.dumps(summary))
        check(f"burst: ARC's sum of replicas is the units held, grouped ones included",
              summary["arc_sum"] == summary["units_held"] == summary["reservation_units"] >= n,
              json.dumps(summary))
    if args.frontend_pid:
        check(f"burst: the frontend's peak RSS stays under {args.max_rss_mib:g} MiB",
              0 < summary["frontend_peak_rss_mib"] < args.max_rss_mib, summary["frontend_peak_rss_mib"])
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
