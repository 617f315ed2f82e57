"""Object-store inputs and outputs for ``infer --ray`` (``s3://``, ``gs://``, ``az://``) through fsspec.

fsspec is the filesystem layer Ray Data itself reads object stores with; its S3 / GCS / Azure drivers
(``s3fs``, ``gcsfs``, ``adlfs``) are imported lazily, and a missing one gets an install hint. Credentials
and endpoints come only from each driver's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_PROFILE`` /
``AWS_ENDPOINT_URL``, instance roles, ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``, fsspec's
``FSSPEC_<PROTOCOL>_<OPTION>`` variables): a URL that carries them (``s3://key:secret@bucket``) is refused,
and every message goes through ``scrub``.

Writes are atomic per object: an S3 / GCS / Azure PUT (multipart included) makes the object appear only when
it is complete, so a worker killed mid-upload leaves either the old object or none; other fsspec stores get
a temporary key moved onto the final one. Completion markers are written after every output, so a resumed
run never counts half an input as done.
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, InputFileError, UserError, one_line

log = logging.getLogger(__name__)

# scheme -> (the fsspec driver's package, the extra that installs it)
DRIVERS = {
    "s3": ("s3fs", "ray"), "s3a": ("s3fs", "ray"),
    "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"),
    "memory": ("fsspec", "ray"),  # fsspec's in-process store: tests and dry runs
}  # fmt: skip
# stores whose PUT is all-or-nothing (the object exists only once fully written): no temporary key needed
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
_COLLAPSED = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>[^/].*)$")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:x-amz-[a-z-]*|awsaccesskeyid|signature|sig|se|sv|token)=)[^&\s]*")


def is_url(text: str | Path | None) -> bool:
    """True for ``scheme://...`` of a store this module handles (``file://`` and local paths: False)."""
    if text is None:
        return False
    match = _URL.match(str(text)) or _COLLAPSED.match(str(text))
    return bool(match) and match["scheme"].lower() in DRIVERS


def as_url(value: str | Path | None) -> str | None:
    """The store URL of a CLI value, undoing ``pathlib``'s ``s3://b`` -> ``s3:/b``; None for local paths."""
    if value is None:
        return None
    text = str(value)
    if _URL.match(text) and is_url(text):
        return text
    match = _COLLAPSED.match(text)
    if match and match["scheme"].lower() in DRIVERS:
        return f"{match['scheme']}://{match['rest']}"
    return None


def scrub(text: str) -> str:
    """``text`` with URL user-info and signed-URL secrets replaced by ``***``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\g<scheme>***@", text))


@dataclass(frozen=True)
class Store:
    """A folder in an object store: ``url`` is ``scheme://bucket/prefix`` with no trailing slash.

    Picklable (Ray ships it to workers); the fsspec filesystem is made lazily on each process from the
    environment's credential chain.
    """

    url: str

    @classmethod
    def parse(cls, url: str, option: str) -> Store:
        """Check ``url``'s form (not the bucket: see ``check``); ``option`` names the CLI option in errors."""
        match = _URL.match(url)
        if match is None or match["scheme"].lower() not in DRIVERS:
            known = ", ".join(f"{s}://" for s in DRIVERS)
            raise UserError(f"{option}: '{scrub(url)}' is not an object-store URL (expected one of {known})")
        if "@" in match["rest"].split("/", 1)[0]:
            raise UserError(f"{option}: '{scrub(url)}' carries credentials; give them through the environment or "
                            "the store's config (AWS_ACCESS_KEY_ID / AWS_PROFILE ...), never in the URL")
        rest = match["rest"].strip("/")
        if not rest:
            raise UserError(f"{option}: '{url}' names no bucket (expected {match['scheme']}://BUCKET/PREFIX)")
        return cls(f"{match['scheme'].lower()}://{rest}")

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]

    @property
    def fs(self) -> Any:
        return filesystem(self.scheme)

    def key(self, relative: str = "") -> str:
        """The fsspec path (``bucket/prefix/relative``) of a key below this folder."""
        root = self.url.split("://", 1)[1]
        return posixpath.join(root, relative) if relative else root

    def child(self, relative: str) -> str:
        """The URL of ``relative`` below this folder."""
        return f"{self.scheme}://{self.key(relative)}"

    def relative(self, key: str) -> str:
        return posixpath.relpath(key, self.key())

    def check(self, option: str) -> None:
        """Fail in one line when the bucket is missing or the credentials are refused (before any work)."""
        with translated(self, option):
            try:
                self.fs.ls(self.key(), detail=False)  # (exists() would hide a refused credential as "missing")
            except FileNotFoundError as exc:
                if _missing_bucket(exc):
                    raise
                # an empty prefix: no outputs yet (fine), no inputs (the listing says so)

    def listing(self, option: str) -> dict[str, dict[str, Any]]:
        """Every object below this folder: fsspec path -> info (``size``, ``ETag`` / ``mtime`` ...)."""
        with translated(self, option):
            self.fs.invalidate_cache()
            found = self.fs.find(self.key(), detail=True)
        return {key: info for key, info in found.items() if info.get("type", "file") == "file"}

    def download(self, key: str, local: Path) -> Path:
        local.parent.mkdir(parents=True, exist_ok=True)
        with translated(self, "input", key):
            self.fs.get_file(key, str(local))
        return local

    def upload(self, local: Path, relative: str) -> str:
        """Put ``local`` at ``relative`` atomically (see the module docstring); returns the key."""
        final = self.key(relative)
        with translated(self, "output", final):
            if self.scheme in ATOMIC_PUT:
                self.fs.put_file(str(local), final)
            else:
                temporary = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.{uuid.uuid4().hex}")
                self.fs.put_file(str(local), temporary)
                self.fs.mv(temporary, final)
        return final

    def upload_many(self, files: list[tuple[Path, str]]) -> list[str]:
        """``upload`` for many files; on a store with atomic PUT they go concurrently (fsspec's async batch)."""
        if self.scheme not in ATOMIC_PUT or len(files) < 2:
            return [self.upload(local, relative) for local, relative in files]
        finals = [self.key(relative) for _, relative in files]
        with translated(self, "output", finals[0]):
            self.fs.put([str(local) for local, _ in files], finals)
        return finals

    def write_text(self, relative: str, text: str) -> str:
        return self.write_bytes(relative, text.encode("utf-8"))

    def write_bytes(self, relative: str, data: bytes) -> str:
        """One small object in one PUT (atomic on object stores)."""
        final = self.key(relative)
        with translated(self, "output", final):
            self.fs.pipe_file(final, data)
        return final

    def read_text(self, key: str) -> str | None:
        """The object's text, or None when it does not exist."""
        data = self.read_bytes(key)
        return None if data is None else data.decode("utf-8")

    def read_bytes(self, key: str) -> bytes | None:
        try:
            with translated(self, "marker", key):
                return self.fs.cat_file(key)
        except InputFileError:
            return None


def identity(info: dict[str, Any]) -> list[Any]:
    """What changes when an object is replaced: its size and ETag (else its modification time)."""
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get("updated")
    return [info.get("size"), str(tag)]


def filesystem(scheme: str) -> Any:
    """fsspec's filesystem for ``scheme`` (one per process, fsspec caches it); an install hint when missing."""
    package, extra = DRIVERS[scheme]
    try:
        import fsspec  # optional extra, loaded only when a URL is given

        return fsspec.filesystem(scheme)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{scheme}:// URLs need {package}. Install: pip install 'spinepose-deploy[{extra}]'"
        ) from exc


class translated:
    """Turn a store's exception into one line naming the bucket/key: missing (``InputFileError``), refused
    credentials or bad URLs (``UserError``); anything else stays a ``UserError`` naming the key."""

    def __init__(self, store: Store, what: str, key: str | None = None) -> None:
        self.store, self.what, self.key = store, what, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, UserError):
            return False
        # the stores' own client libraries (botocore's NoCredentialsError, google-auth's DefaultCredentialsError,
        # azure-identity's errors) raise outside OSError: a user without credentials must get one line too
        store_library = type(exc).__module__.split(".")[0] in _STORE_CLIENT_MODULES
        if not isinstance(exc, (OSError, ValueError)) and not store_library:
            return False
        where = f"{self.store.scheme}://{self.key or self.store.key()}"
        reason = scrub(one_line(exc))
        if store_library and "credential" in type(exc).__name__.lower():
            raise UserError(f"{self.what}: no credentials for '{scrub(where)}' (bucket '{self.store.bucket}'): "
                            f"{reason}; set them in the environment or the store's config file") from None
        if isinstance(exc, FileNotFoundError):
            missing = "bucket" if _missing_bucket(exc) else "key"
            name = self.store.bucket if missing == "bucket" else where
            raise InputFileError(f"{self.what}: {missing} '{scrub(name)}' does not exist ({reason})") from None
        if isinstance(exc, PermissionError):
            raise UserError(f"{self.what}: access to '{scrub(where)}' (bucket '{self.store.bucket}') was denied "
                            f"({reason}); check the credentials in the environment / store config") from None
        raise UserError(f"{self.what}: '{scrub(where)}': {reason}") from None


_STORE_CLIENT_MODULES = frozenset({"botocore", "aiobotocore", "s3fs", "google", "gcsfs", "azure", "adlfs"})


def _missing_bucket(exc: BaseException) -> bool:
    """True when the store said the bucket (not a key below it) does not exist."""
    response = getattr(exc.__cause__, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    return code == "NoSuchBucket" or "specified bucket does not exist" in str(exc).lower()
