"""Get a model's ONNX graph onto disk: local file, models dir, cache, or download.

Order of lookup in ``fetch_model``: an explicit ``local`` file (used as is), a models dir
(``models_dir`` or ``$SPINEPOSE_DEPLOY_MODELS``), the cache (``paths.cache_subdir("models")``), and
only then the network (pooch's HTTP downloader; never in offline mode).

Every graph is checked against its spec's I/O contract before use. Downloads and models-dir files
are hash-pinned: YOLOX SDK zips must match the sha256 prefix in their published name, and every
graph's sha256 is recorded in ``models/pins.json`` the first time it is seen and verified on every
later load (a file whose hash matches its pin is not parsed again: those bytes already passed the
same contract, recorded in the pin). Work happens in a ``.partial`` staging dir inside the cache and
only verified files are moved into place with ``os.replace``, so a failure or Ctrl-C leaves nothing
half-written.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from filelock import FileLock

from .. import paths
from .._atomic import write_text
from ..errors import (
    DownloadError,
    FetchError,
    HashMismatchError,
    InputFileError,
    ModelLoadError,
    OfflineError,
    UnsafeArchiveError,
    first_line,
)
from .contract import check_model_contract, load_graph, show_head
from .specs import ModelSpec

logger = logging.getLogger(__name__)

MIRROR_ENV = "SPINEPOSE_DEPLOY_MIRROR"
PINS_FILE = "pins.json"
_CHUNK = 1 << 20  # pooch's default of 1 KiB means 200k write+flush calls for a 200 MB graph
_TIMEOUT_S = 60  # seconds without a byte while downloading
_CONNECT_TIMEOUT_S = 5  # to reach the host: an offline machine (weights="auto") fails fast


def models_cache() -> Path:
    """The cache folder that holds fetched graphs and ``pins.json``."""
    return paths.cache_subdir("models")


def pins_path() -> Path:
    return models_cache() / PINS_FILE


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, hashed once per version (size, mtime): to name and key files, not to verify a download
    (pins use :func:`sha256_file`, which always reads)."""
    info = os.stat(path)
    return _sha256_of_version(os.fspath(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _sha256_of_version(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def cached_path(spec: ModelSpec) -> Path | None:
    """The graph's file in the cache if it is there (not verified), else None."""
    path = models_cache() / spec.filename
    return path if path.is_file() else None


def download_url(spec: ModelSpec, base_url: str | None = None) -> str:
    """The spec's URL; ``base_url`` (or ``$SPINEPOSE_DEPLOY_MIRROR``) replaces all before the file name."""
    base = base_url or os.environ.get(MIRROR_ENV)
    if not base:
        return spec.url
    return f"{base.rstrip('/')}/{_url_basename(spec.url)}"


def fetch_model(
    spec: ModelSpec,
    *,
    local: Path | None = None,
    models_dir: Path | None = None,
    offline: bool | None = None,
    progress: bool = False,
    base_url: str | None = None,
) -> Path:
    """Return a path to ``spec``'s ONNX graph, contract-checked and (unless ``local``) hash-verified."""
    if local is not None:
        return _use_local(spec, Path(local))
    return _fetch(spec, models_dir, offline, progress, base_url, repin=False)


def repin(
    spec: ModelSpec,
    *,
    models_dir: Path | None = None,
    offline: bool | None = None,
    progress: bool = False,
    base_url: str | None = None,
) -> Path:
    """Fetch ``spec`` afresh (models dir or network, not the cache) and record its sha256 as the new pin.

    The old pin and cached file are replaced only once the new file has passed every check.
    """
    return _fetch(spec, models_dir, offline, progress, base_url, repin=True)


def _fetch(
    spec: ModelSpec,
    models_dir: Path | None,
    offline: bool | None,
    progress: bool,
    base_url: str | None,
    repin: bool,
) -> Path:
    offline = paths.offline_requested() if offline is None else offline
    search = _models_dir(models_dir)
    url = download_url(spec, base_url)
    lock_dir = models_cache() / ".locks"
    lock_dir.mkdir(exist_ok=True)
    # One process fetches a given graph at a time; the others then find it cached.
    with FileLock(str(lock_dir / f"{spec.name}.lock")):
        found = _from_models_dir(spec, search, repin) if search else None
        if found is not None:
            return found
        cached = None if repin else cached_path(spec)
        if cached is not None:
            return _check_and_pin(spec, cached, label=str(cached), source="cache", repin=False)
        if offline:
            where = [str(models_cache())] + ([str(search)] if search else [])
            raise OfflineError(
                f"'{spec.name}' ({spec.filename}) is not available offline; looked for {spec.filename} or"
                f" {_url_basename(spec.url)} in {', '.join(where)}. Fetch it on a connected machine"
                f" (spinepose-deploy models fetch {spec.name}) or put it in ${paths.MODELS_DIR_ENV}."
            )
        return _download(spec, url, progress, repin)


def _use_local(spec: ModelSpec, local: Path) -> Path:
    if not local.is_file():
        raise InputFileError(f"local model file {local} for '{spec.name}' does not exist")
    with open(local, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise InputFileError(
                f"{local} is a zip archive; pass the extracted {spec.archive_member or spec.filename}, or put"
                f" the zip in a models dir (--models-dir / ${paths.MODELS_DIR_ENV})"
            )
    check_model_contract(load_graph(local), spec, label=str(local))
    return local


def _models_dir(models_dir: Path | None) -> Path | None:
    if models_dir is not None:
        source, path = "models dir", Path(models_dir).expanduser()
    elif os.environ.get(paths.MODELS_DIR_ENV):
        source, path = f"${paths.MODELS_DIR_ENV}", Path(os.environ[paths.MODELS_DIR_ENV]).expanduser()
    else:
        return None
    if not path.is_dir():
        raise InputFileError(f"{source} {path} is not a directory")
    return path


def _from_models_dir(spec: ModelSpec, folder: Path, repin: bool) -> Path | None:
    """Use ``spec.filename`` in place, or the URL's file (a YOLOX zip is extracted into the cache)."""
    for name in dict.fromkeys([spec.filename, _url_basename(spec.url)]):
        candidate = folder / name
        if not candidate.is_file():
            continue
        logger.info("using %s for '%s' from the models dir", candidate, spec.name)
        if spec.archive_member and name.endswith(".zip"):
            with _staging(spec) as staging:
                return _install_zip(spec, candidate, source=str(candidate), staging=staging, repin=repin)
        return _check_and_pin(spec, candidate, label=str(candidate), source=str(candidate), repin=repin)
    return None


def _download(spec: ModelSpec, url: str, progress: bool, repin: bool) -> Path:
    name = _url_basename(url)
    with _staging(spec) as staging:
        target = staging / name
        _stream(url, target, progress)
        if spec.archive_member:
            return _install_zip(spec, target, source=url, staging=staging, repin=repin)
        try:
            return _check_and_pin(
                spec, target, label=name, source=url, repin=repin, install_to=models_cache() / spec.filename
            )
        except ModelLoadError as exc:
            raise FetchError(f"{exc} (downloaded from {url})") from exc


def _stream(url: str, target: Path, progress: bool) -> None:
    """Download ``url`` to ``target`` with pooch's HTTP downloader; errors become one-line FetchErrors."""
    # only when something is downloaded
    import pooch
    import requests

    logger.info("downloading %s", url)
    bar = _RichDownloadProgress(target.name) if progress else False
    downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=_CHUNK, timeout=(_CONNECT_TIMEOUT_S, _TIMEOUT_S))
    try:
        downloader(url, str(target), None)
    except requests.exceptions.RequestException as exc:
        raise DownloadError(
            f"could not download {url}: {_reason(exc)}. Check the network (or ${MIRROR_ENV}), or copy the file"
            f" into a folder named by ${paths.MODELS_DIR_ENV} and set ${paths.OFFLINE_ENV}=1"
        ) from exc
    finally:
        if bar:
            bar.close()


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} {response.reason}".strip()
    inner = exc.args[0] if exc.args else exc
    text = str(getattr(inner, "reason", inner))
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:\s*", "", text)  # urllib3 puts object reprs first
    return first_line(text) if text.strip() else type(exc).__name__


def _install_zip(spec: ModelSpec, zip_path: Path, *, source: str, staging: Path, repin: bool) -> Path:
    """Check an SDK zip's hash prefix, extract only its ``archive_member`` safely, then check and pin it."""
    digest = sha256_file(zip_path)
    prefix = (spec.sha256_prefix or "").lower()
    if not digest.startswith(prefix):
        with open(zip_path, "rb") as f:
            head = f.read(16)
        if not head.startswith(b"PK\x03\x04"):
            raise FetchError(
                f"{zip_path.name} from {source} is not a zip archive (starts with '{show_head(head)}'...)"
            )
        raise HashMismatchError(
            f"{zip_path.name} from {source}: sha256 {digest} does not start with {prefix}, the hash in its"
            " published name; the file is corrupt or not the published archive"
        )
    label = f"{zip_path.name}:{spec.archive_member}"
    extracted = staging / f"{spec.filename}.extracted"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            member = _safe_member(archive, spec.archive_member or "", zip_path.name)
            with archive.open(member) as src, open(extracted, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{zip_path.name} from {source} is not a valid zip archive ({exc})") from exc
    return _check_and_pin(
        spec,
        extracted,
        label=label,
        source=source,
        repin=repin,
        install_to=models_cache() / spec.filename,
        extra={"archive": zip_path.name, "archive_sha256": digest},
    )


def _safe_member(archive: zipfile.ZipFile, wanted: str, label: str) -> zipfile.ZipInfo:
    """Refuse archives with absolute, ``..`` or link/special entries; return the one named ``wanted``."""
    matches = []
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise UnsafeArchiveError(f"{label}: entry '{info.filename}' would land outside the target folder")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise UnsafeArchiveError(f"{label}: entry '{info.filename}' is {what}")
        if not info.is_dir() and parts and parts[-1] == wanted:
            matches.append(info)
    if len(matches) != 1:
        found = ", ".join(m.filename for m in matches) or "none"
        raise FetchError(f"{label}: expected exactly one '{wanted}' entry, found {found}")
    return matches[0]


def _check_and_pin(
    spec: ModelSpec,
    path: Path,
    *,
    label: str,
    source: str,
    repin: bool,
    install_to: Path | None = None,
    extra: dict | None = None,
) -> Path:
    """Verify ``path`` against the pin (or check its contract and pin it); optionally move it into place."""
    digest = sha256_file(path)
    entry = read_pins().get(spec.name)
    contract = _contract_id(spec)
    if entry and not repin and entry.get("sha256") == digest and entry.get("contract") == contract:
        return _install(path, install_to)  # the same bytes already passed this contract
    model = load_graph(path, label=label)  # garbage gets "not an ONNX model", not a hash mismatch
    if entry and not repin and entry.get("sha256") != digest:
        raise HashMismatchError(
            f"{label}: sha256 {digest} does not match the pinned {entry.get('sha256')} (from"
            f" {entry.get('source', '?')}, {entry.get('pinned_at', '?')}); if the new file is intended,"
            f" re-pin with `spinepose-deploy models fetch {spec.name} --repin` or delete '{spec.name}'"
            f" from {pins_path()}"
        )
    check_model_contract(model, spec, label=label)
    pinned_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    entry = {"file": (install_to or path).name, "sha256": digest, "source": source, "contract": contract}
    _write_pin(spec.name, {**entry, "pinned_at": pinned_at, **(extra or {})})
    return _install(path, install_to)


def _install(path: Path, install_to: Path | None) -> Path:
    if install_to is None:
        return path
    os.replace(path, install_to)
    logger.info("cached %s", install_to)
    return install_to


def _contract_id(spec: ModelSpec) -> str:
    # A changed contract in a newer release makes the pinned file be checked again.
    return hashlib.sha256(repr((spec.inputs, spec.outputs)).encode()).hexdigest()[:16]


def read_pins() -> dict:
    """The pinned entries by model name ({} before the first fetch)."""
    path = pins_path()
    if not path.exists():
        return {}
    try:
        models = json.loads(path.read_text(encoding="utf-8"))["models"]
        if not isinstance(models, dict):
            raise ValueError("'models' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(
            f"{path} is not a valid pin file ({exc}); delete it to pin all models afresh"
        ) from exc
    return models


def _write_pin(name: str, entry: dict) -> None:
    path = pins_path()
    with FileLock(str(models_cache() / ".locks" / f"{PINS_FILE}.lock")):
        pins = read_pins()
        pins[name] = entry
        write_text(path, json.dumps({"version": 1, "models": pins}, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _staging(spec: ModelSpec) -> Iterator[Path]:
    """A scratch folder inside the cache (same filesystem, so os.replace is atomic); always removed."""
    folder = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".partial", dir=models_cache()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _url_basename(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class _RichDownloadProgress:
    """The progress object pooch's HTTPDownloader drives (total, update, reset, close), drawn by rich."""

    def __init__(self, label: str) -> None:
        # only when something is downloaded (progress bar)
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(
            TextColumn(label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
        )
        self._task = None
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = int(value or 0)
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("download", total=self._total or None)
        else:
            self._progress.update(self._task, total=self._total or None)

    def update(self, n: int) -> None:
        if self._task is not None:
            done = self._progress.tasks[0].completed + n
            self._progress.update(self._task, completed=min(done, self._total) if self._total else done)

    def reset(self) -> None:
        if self._task is not None:
            self._progress.reset(self._task, total=self._total or None)

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None
