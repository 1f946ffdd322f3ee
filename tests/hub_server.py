"""A small local Hugging Face Hub for tests: the real ``huggingface_hub`` client talks HTTP to it.

Model repos only; ``{repo}`` is ``namespace/name``; ``{rev}`` is a branch or a full commit sha (URL-quoted).

    POST     /api/repos/create                        create_repo: 200 {"url"}; 409 (body still has "url") if it exists
    POST     /api/validate-yaml                       README.md front-matter check made by create_commit
    GET      /api/whoami-v2                           a fake user called "user"
    GET      /api/agent-harnesses                     empty registry (the client may fetch it for its user agent)
    GET      /api/models/{repo}[/revision/{rev}]      model_info, repo_info, repo_exists (?blobs=true: file sizes, lfs)
    GET      /api/models/{repo}/tree/{rev}[/{path}]   list_repo_tree, list_repo_files (?recursive=true); no pagination
    POST     /api/models/{repo}/preupload/{rev}       every file gets uploadMode "regular": the client then sends the
                                                      bytes base64 in the commit, and never uses LFS or Xet
    POST     /api/models/{repo}/commit/{rev}          NDJSON: header, file (base64), lfsFile (blob already stored),
                                                      deletedFile, deletedFolder; parentCommit mismatch -> 412
    HEAD|GET /{repo}/resolve/{rev}/{path}             hf_hub_download: X-Repo-Commit, ETag, Content-Length, and for
                                                      LFS-like files X-Linked-Etag / X-Linked-Size. No redirects, no
                                                      X-Xet-* headers (so no Xet download), no Range support.

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and ``X-Error-Message`` as the Hub's
do, so the client raises RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError. Writes need an
``Authorization: Bearer ...`` header (any token); private repos also need one to be read.

Files matching the Hub's default ``.gitattributes`` LFS patterns (``*.safetensors``, ``*.bin``...) or over 10 MiB are
reported as LFS files, as on the Hub: ETag is their quoted sha256 and ``siblings``/tree entries have ``lfs`` info;
other files have the git blob sha1 as ETag. Every commit gets a new 40-hex sha; a branch resolves to its latest commit.
``create_repo`` makes an initial commit holding ``.gitattributes``, like the Hub.

Storage under ``root``: ``{repo}/repo.json`` (refs, commits, file metadata) and ``{repo}/blobs/{sha256}`` (bytes).
"""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from zoo.weights.files import git_blob_sha1

LFS_PATTERNS = ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.mlmodel",
                "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl",
                "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip",
                "*.zst", "*tfevents*")
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.body = status, message, code, headers, body


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def card_data(readme: bytes) -> dict | None:
    """The YAML front matter of a README.md, as the Hub's ``cardData``."""
    m = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", readme.decode("utf-8", "replace"), re.S)
    data = yaml.safe_load(m.group(1)) if m else None
    return data if isinstance(data, dict) else None


class LocalHub:
    """``with LocalHub(root) as hub:`` (or ``.start()``/``.stop()``) serves repos stored under ``hub.root`` (a temporary
    folder if ``root`` is None) at ``hub.url`` (``http://127.0.0.1:PORT``). ``hub.requests`` lists every request seen
    as ``(method, unquoted path without query)``, e.g. ``("GET", "/org/model/resolve/main/model.safetensors")``;
    ``hub.repos`` is the state (refs, commits, file metadata) also saved as ``repo.json``."""

    def __init__(self, root=None, host: str = "127.0.0.1"):
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="localhub-")
        self.root = Path(root if root is not None else self._tmp.name)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host, self.port, self.requests, self.repos = host, None, [], {}
        self._lock, self._server, self._thread, self._count = threading.RLock(), None, None, 0

    def start(self) -> "LocalHub":
        self._server = ThreadingHTTPServer((self.host, 0), type("Handler", (_Handler,), {"hub": self}))
        self._server.daemon_threads, self.port = True, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    __enter__ = start

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- storage ----------------------------------------------------------------------------------------------------
    def lookup(self, repo_id: str, rev: str = "main", authorized: bool = True) -> tuple[dict, str, dict]:
        """(repo, commit sha, commit) for a branch or commit sha; HubError as the Hub answers if there is none."""
        r = self.repos.get(repo_id)
        if r is None or (r["private"] and not authorized):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        sha = r["refs"].get(rev) or (rev if rev in r["commits"] else None)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return r, sha, r["commits"][sha]

    def read(self, repo_id: str, meta: dict) -> bytes:
        return (self.root / repo_id / "blobs" / meta["sha256"]).read_bytes()

    def store(self, repo_id: str, path: str, data: bytes) -> dict:
        """Write ``data`` (also repairing a corrupted blob) and return the file's metadata."""
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        (self.root / repo_id / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / repo_id / "blobs" / sha256).write_bytes(data)
        lfs = size > LFS_MIN_SIZE or any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)
        meta = {"size": size, "sha1": git_blob_sha1(data), "sha256": sha256, "lfs": lfs, "blob_id": git_blob_sha1(data)}
        if lfs:  # the git blob of an LFS file is its pointer file
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
            meta.update(blob_id=git_blob_sha1(pointer), pointer_size=len(pointer))
        return meta

    def create(self, repo_id: str, private: bool = False) -> None:
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this model repo", body={"url": f"{self.url}/{repo_id}"})
            self.repos[repo_id] = {"private": private, "created": _now(), "refs": {}, "commits": {}}
            gitattributes = self.store(repo_id, ".gitattributes", GITATTRIBUTES)
            self.commit(repo_id, "main", {".gitattributes": gitattributes}, "initial commit")

    def commit(self, repo_id: str, branch: str, files: dict, title: str, description: str = "") -> str:
        with self._lock:
            r = self.repos[repo_id]
            parent, self._count = r["refs"].get(branch), self._count + 1
            sha = hashlib.sha1(json.dumps([repo_id, parent, title, files, self._count, time.time()],
                                          sort_keys=True).encode()).hexdigest()
            r["commits"][sha] = {"parent": parent, "title": title, "description": description, "date": _now(),
                                 "files": files}
            r["refs"][branch] = sha
            (self.root / repo_id).mkdir(parents=True, exist_ok=True)
            (self.root / repo_id / "repo.json").write_text(json.dumps(r, indent=1))
            return sha

    def corrupt(self, repo_id: str, filename: str, data: bytes, revision: str = "main") -> None:
        """Serve ``data`` for ``filename`` from now on, keeping its recorded sha256/ETag/commit (a corrupt blob).

        Content-Length and X-Linked-Size follow the new bytes, so the client's size check passes and only a hash
        check can tell. Other commits of this repo holding the same content are corrupted too; uploading the
        original bytes again repairs them."""
        with self._lock:
            files = self.lookup(repo_id, revision)[2]["files"]
            if filename not in files:
                raise KeyError(f"{repo_id} has no {filename} at {revision}")
            (self.root / repo_id / "blobs" / files[filename]["sha256"]).write_bytes(data)

    # --- API payloads -----------------------------------------------------------------------------------------------
    def model_info(self, repo_id: str, rev: str, authorized: bool, blobs: bool) -> dict:
        r, sha, c = self.lookup(repo_id, rev, authorized)
        has_card = "README.md" in c["files"]
        card = (card_data(self.read(repo_id, c["files"]["README.md"])) if has_card else None) or {}
        siblings = []
        for path, m in sorted(c["files"].items()):
            siblings.append({"rfilename": path})
            if blobs:
                siblings[-1].update(size=m["size"], blobId=m["blob_id"])
                if m["lfs"]:
                    siblings[-1]["lfs"] = {"size": m["size"], "sha256": m["sha256"], "pointerSize": m["pointer_size"]}
        langs = card.get("language") or []
        tags = [card.get("library_name"), *(card.get("tags") or []), card.get("pipeline_tag"),
                *([langs] if isinstance(langs, str) else langs), card.get("license") and f"license:{card['license']}",
                "region:us"]
        info = {"_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
                "author": repo_id.split("/")[0], "sha": sha, "lastModified": c["date"], "createdAt": r["created"],
                "private": r["private"], "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                "tags": [t for t in dict.fromkeys(map(str, filter(None, tags)))], "siblings": siblings}
        info.update({k: card[k] for k in ("library_name", "pipeline_tag") if card.get(k)})
        return {**info, "cardData": card} if has_card else info

    def tree(self, repo_id: str, rev: str, path: str, recursive: bool, authorized: bool) -> list[dict]:
        files = self.lookup(repo_id, rev, authorized)[2]["files"]
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        under = {p: m for p, m in sorted(files.items()) if p.startswith(prefix)}
        if prefix and not under:
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        out, folders = [], set()
        for p, m in under.items():
            parts = p[len(prefix):].split("/")
            depth = len(parts) if recursive else min(2, len(parts))
            folders.update(prefix + "/".join(parts[:i]) for i in range(1, depth))
            if recursive or len(parts) == 1:
                out.append({"type": "file", "path": p, "size": m["size"], "oid": m["blob_id"]})
                if m["lfs"]:
                    out[-1]["lfs"] = {"oid": m["sha256"], "size": m["size"], "pointerSize": m["pointer_size"]}
        return [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                for f in sorted(folders)] + out

    def apply_commit(self, repo_id: str, branch: str, lines: list[dict]) -> str:
        with self._lock:
            r, head, c = self.lookup(repo_id, branch)
            if branch not in r["refs"]:
                raise HubError(400, f"Cannot commit to {branch}: not a branch")
            header = next((op["value"] for op in lines if op["key"] == "header"), {})
            if header.get("parentCommit") and not head.startswith(header["parentCommit"]):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(c["files"])
            for key, v in ((op["key"], op["value"]) for op in lines):
                if key == "file":
                    data = base64.b64decode(v["content"]) if v.get("encoding") == "base64" else v["content"].encode()
                    files[v["path"]] = self.store(repo_id, v["path"], data)
                elif key == "lfsFile":  # only a blob this repo already has (a copy); nothing is ever LFS-uploaded
                    blob = self.root / repo_id / "blobs" / v["oid"]
                    if not blob.exists():
                        raise HubError(422, f"LFS object {v['oid']} was never uploaded (this server has no LFS)")
                    files[v["path"]] = self.store(repo_id, v["path"], blob.read_bytes())
                elif key == "deletedFile":
                    if files.pop(v["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    files = {p: m for p, m in files.items() if not p.startswith(v["path"].rstrip("/") + "/")}
                elif key != "header":
                    raise HubError(400, f"Unsupported commit operation {key!r}")
            return self.commit(repo_id, branch, files, header.get("summary", ""), header.get("description", ""))


class _Handler(BaseHTTPRequestHandler):
    protocol_version, disable_nagle_algorithm = "HTTP/1.1", True  # no 40 ms Nagle/delayed-ACK stalls
    hub: LocalHub

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.hub.requests.append((self.command, unquote(url.path)))
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        self.authorized = (self.headers.get("Authorization") or "").startswith("Bearer ")
        try:
            for methods, pattern, name in ROUTES:
                m = re.fullmatch(pattern, url.path)
                if m and self.command in methods:
                    return getattr(self, name)(**{k: unquote(v) for k, v in m.groupdict().items() if v})
            repo_like = url.path.startswith("/api/models/") or "/resolve/" in url.path
            raise HubError(404, f"Not Found: {url.path}", "RepoNotFound" if repo_like else None)
        except HubError as e:
            self.send(e.status, {"error": e.message, **(e.body or {})},
                      {"X-Error-Code": e.code, "X-Error-Message": e.message, **(e.headers or {})})
        except Exception as e:  # a bug here, or a request this server does not understand
            self.send(500, {"error": f"LocalHub: {type(e).__name__}: {e}"})

    do_HEAD = do_POST = do_GET

    def send(self, status: int, body, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(data))}
        for k, v in headers.items():
            if v is not None:
                self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def need_auth(self) -> None:
        if not self.authorized:
            raise HubError(401, "Invalid credentials in Authorization header")

    def is_true(self, key: str) -> bool:
        return self.query.get(key, "").lower() in ("1", "true")

    # --- endpoints --------------------------------------------------------------------------------------------------
    def create_repo(self) -> None:
        self.need_auth()
        p = json.loads(self.body)
        if p.get("type", "model") not in (None, "model"):
            raise HubError(400, f"LocalHub only serves model repos, not {p['type']}")
        repo_id = f"{p.get('organization') or 'user'}/{p['name']}"
        self.hub.create(repo_id, private=p.get("visibility") == "private" or bool(p.get("private")))
        self.send(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> None:
        try:
            card_data(json.loads(self.body).get("content", "").encode())
        except yaml.YAMLError as e:
            return self.send(400, {"errors": [{"message": f"Invalid YAML: {e}"}], "warnings": []})
        self.send(200, {"errors": [], "warnings": []})

    def whoami(self) -> None:
        self.need_auth()
        self.send(200, {"type": "user", "name": "user", "fullname": "Local Hub User", "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def agent_harnesses(self) -> None:
        self.send(200, {"standardEnvVars": [], "harnesses": {}})

    def model_info(self, repo: str, rev: str = "main") -> None:
        self.send(200, self.hub.model_info(repo, rev, self.authorized, self.is_true("blobs")))

    def tree(self, repo: str, rev: str, path: str = "") -> None:
        self.send(200, self.hub.tree(repo, rev, path, self.is_true("recursive"), self.authorized))

    def preupload(self, repo: str, rev: str) -> None:
        self.need_auth()
        files = self.hub.lookup(repo, rev)[2]["files"]
        self.send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                   "oid": files.get(f["path"], {}).get("sha1")} for f in json.loads(self.body)["files"]]})

    def commit(self, repo: str, rev: str) -> None:
        self.need_auth()
        if self.is_true("create_pr"):
            raise HubError(400, "LocalHub does not support pull requests")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        sha = self.hub.apply_commit(repo, rev, lines)
        self.send(200, {"success": True, "commitOid": sha, "commitUrl": f"{self.hub.url}/{repo}/commit/{sha}",
                        "pullRequestUrl": None})

    def resolve(self, repo: str, rev: str, path: str) -> None:
        _, sha, c = self.hub.lookup(repo, rev, self.authorized)
        files = c["files"]
        if path not in files:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        meta, data = files[path], self.hub.read(repo, files[path])
        etag = f'"{meta["sha256"] if meta["lfs"] else meta["sha1"]}"'
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": sha, "ETag": etag}
        if meta["lfs"]:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(len(data))})
        self.send(200, data, headers)


ROUTES = [
    ({"POST"}, r"/api/repos/create", "create_repo"),
    ({"POST"}, r"/api/validate-yaml", "validate_yaml"),
    ({"GET"}, r"/api/whoami-v2", "whoami"),
    ({"GET"}, r"/api/agent-harnesses", "agent_harnesses"),
    ({"GET"}, rf"/api/models/{REPO}(?:/revision/{REV})?", "model_info"),
    ({"GET"}, rf"/api/models/{REPO}/tree/{REV}(?:/(?P<path>.*))?", "tree"),
    ({"POST"}, rf"/api/models/{REPO}/preupload/{REV}", "preupload"),
    ({"POST"}, rf"/api/models/{REPO}/commit/{REV}", "commit"),
    ({"GET", "HEAD"}, rf"/{REPO}/resolve/{REV}/(?P<path>.+)", "resolve"),
]
