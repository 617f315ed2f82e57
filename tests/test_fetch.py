"""zoo.fetch against a real HTTP server on 127.0.0.1 serving generated ONNX graphs and zips."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spinepose_deploy import errors
from spinepose_deploy.zoo import fetch
from spinepose_deploy.zoo.contract import check_contract
from spinepose_deploy.zoo.specs import LIFTER, ModelSpec, get_spec

LIFTER_FILE = LIFTER.url.rsplit("/", 1)[-1]
POSE = get_spec("pose-s-v2")
POSE_FILE = POSE.url.rsplit("/", 1)[-1]


# ---------------------------------------------------------------- generated models


def _model(nodes, inputs, outputs, initializers=()) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def lifter_onnx(seed: int = 0, out_name: str = "y", out_dims: int = 3) -> bytes:
    """(batch, 37, 2) @ W(2, out_dims) -> (batch, 37, out_dims)."""
    w = np.random.default_rng(seed).standard_normal((2, out_dims)).astype(np.float32)
    return _model(
        [helper.make_node("MatMul", ["x", "w"], [out_name])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 37, 2])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 37, out_dims])],
        [numpy_helper.from_array(w, "w")],
    )


def pose_onnx(width: int = 384) -> bytes:
    """input (N,3,256,192) -> mean -> broadcast to simcc_x (N,37,width), simcc_y (N,37,512)."""
    inits = [
        numpy_helper.from_array(np.array([0, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.ones((1, 37, width), np.float32), "ones_x"),
        numpy_helper.from_array(np.ones((1, 37, 512), np.float32), "ones_y"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m3"]),
        helper.make_node("Mul", ["m3", "ones_x"], ["simcc_x"]),
        helper.make_node("Mul", ["m3", "ones_y"], ["simcc_y"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
        [
            helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["N", 37, width]),
            helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["N", 37, 512]),
        ],
        inits,
    )


def yolox_onnx() -> bytes:
    """The end2end contract: input (1,3,416,416) -> dets (1,num_dets,5) float, labels (1,num_dets) int64."""
    dets = numpy_helper.from_array(np.zeros((1, 2, 5), np.float32))
    labels = numpy_helper.from_array(np.zeros((1, 2), np.int64))
    return _model(
        [
            helper.make_node("Constant", [], ["dets"], value=dets),
            helper.make_node("Constant", [], ["labels"], value=labels),
        ],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 416, 416])],
        [
            helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, "num_dets", 5]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, "num_dets"]),
        ],
    )


def make_zip(entries: list[tuple[str, bytes] | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for entry in entries:
            info, data = entry if isinstance(entry, tuple) else (entry, b"")
            zf.writestr(info, data)
    return buf.getvalue()


def sdk_zip(extra: list | None = None) -> bytes:
    folder = "yolox_tiny_8xb8-300e_humanart-test"
    return make_zip(
        [
            (f"{folder}/", b""),
            (f"{folder}/deploy.json", b"{}"),
            (f"{folder}/pipeline.json", b"{}"),
            (f"{folder}/end2end.onnx", yolox_onnx()),
            *(extra or []),
        ]
    )


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


# ---------------------------------------------------------------- server fixture


class Server:
    """Serves ``routes[basename]``: bytes, or a callable(handler) that writes the response itself."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes | Callable] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                body = server.routes.get(self.path.rsplit("/", 1)[-1])
                if callable(body):
                    body(self)
                    return
                if body is None:
                    self.send_error(404, "File not found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mirror/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SPINEPOSE_DEPLOY_CACHE", str(root))
    for name in ("SPINEPOSE_DEPLOY_MODELS", "SPINEPOSE_DEPLOY_OFFLINE", fetch.MIRROR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return root


@pytest.fixture
def server(cache):
    srv = Server()
    yield srv
    srv.close()


def cache_files(cache: Path) -> set[str]:
    """Every file under the cache's models folder (lock files aside), relative names."""
    models = cache / "models"
    return {
        p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file() and ".locks" not in p.parts
    }


def pins(cache: Path) -> dict:
    path = cache / "models" / "pins.json"
    return json.loads(path.read_text())["models"] if path.exists() else {}


def yolox_spec(server: Server, data: bytes) -> ModelSpec:
    """The real yolox-tiny spec with a URL/prefix matching ``data``, served by ``server``."""
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"yolox_tiny_8xb8-300e_humanart-{prefix}.zip"
    server.routes[name] = data
    spec = get_spec("yolox-tiny")
    return dataclasses.replace(spec, url=spec.url.rsplit("/", 1)[0] + "/" + name, sha256_prefix=prefix)


# ---------------------------------------------------------------- happy paths


def test_download_pins_then_uses_cache_without_network(server, cache):
    server.routes[LIFTER_FILE] = data = lifter_onnx()
    path = fetch.fetch_model(LIFTER, base_url=server.url)
    assert path == cache / "models" / "lifter.onnx" and path.read_bytes() == data
    assert server.requests == [f"/mirror/files/{LIFTER_FILE}"]
    entry = pins(cache)["lifter"]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() == fetch.sha256_file(path)
    assert entry["source"] == f"{server.url}/{LIFTER_FILE}"
    assert cache_files(cache) == {"lifter.onnx", "pins.json"}
    assert fetch.cached_path(LIFTER) == path
    assert fetch.fetch_model(LIFTER, base_url=server.url) == path
    assert len(server.requests) == 1


def test_mirror_env_and_progress_bar(server, cache, monkeypatch, capsys):
    server.routes[POSE_FILE] = pose_onnx()
    monkeypatch.setenv(fetch.MIRROR_ENV, server.url + "/")
    assert fetch.download_url(POSE) == f"{server.url}/{POSE_FILE}"
    path = fetch.fetch_model(POSE, progress=True)
    assert path.name == "pose-s-v2.onnx"
    assert POSE_FILE in capsys.readouterr().err  # rich draws the bar on stderr


def test_yolox_zip_extracts_only_end2end(server, cache, tmp_path):
    spec = yolox_spec(server, sdk_zip())
    path = fetch.fetch_model(spec, base_url=server.url)
    assert path.read_bytes() == yolox_onnx()
    assert cache_files(cache) == {"yolox-tiny.onnx", "pins.json"}
    entry = pins(cache)["yolox-tiny"]
    assert entry["archive_sha256"].startswith(spec.sha256_prefix)
    assert entry["sha256"] == fetch.sha256_file(path)
    assert not list(tmp_path.glob("*.json"))  # deploy.json etc. went nowhere


# ---------------------------------------------------------------- bad downloads


def test_truncated_onnx_is_rejected_and_not_cached(server, cache):
    data = lifter_onnx()
    server.routes[LIFTER_FILE] = data[: len(data) // 2]
    with pytest.raises(errors.FetchError, match=rf"{LIFTER_FILE} is not a valid ONNX model \(truncated"):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert cache_files(cache) == set()


def test_html_error_page_is_rejected_and_not_cached(server, cache):
    server.routes[LIFTER_FILE] = b"<!DOCTYPE html><html><body>Rate limited</body></html>"
    with pytest.raises(
        errors.FetchError, match=r"is not an ONNX model \(starts with '<!DOCTYPE html'\.\.\.\)"
    ):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert cache_files(cache) == set()


def test_http_404_is_one_line_fetch_error(server, cache):
    with pytest.raises(
        errors.FetchError, match=rf"could not download {server.url}/{LIFTER_FILE}: HTTP 404"
    ) as info:
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert "\n" not in str(info.value)
    assert cache_files(cache) == set()


def test_connection_refused_is_fetch_error(server, cache):
    url = server.url
    server.close()
    with pytest.raises(errors.FetchError, match=r"could not download .*refused") as info:
        fetch.fetch_model(LIFTER, base_url=url)
    assert "\n" not in str(info.value) and "object at 0x" not in str(info.value)
    assert cache_files(cache) == set()


def test_wrong_contract_is_rejected_and_not_cached(server, cache):
    server.routes[POSE_FILE] = pose_onnx(width=100)
    with pytest.raises(
        errors.ContractError,
        match=rf"{POSE_FILE}: output 'simcc_x' has shape \(N, 37, 100\), expected \(batch, 37, 384\)",
    ):
        fetch.fetch_model(POSE, base_url=server.url)
    server.routes[LIFTER_FILE] = lifter_onnx(out_dims=4)
    with pytest.raises(errors.ContractError, match=r"output 0 \('y'\) has shape .*dim 2: 4 != 3"):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert cache_files(cache) == set()


def test_changed_bytes_after_pinning_raise_then_repin(server, cache):
    server.routes[LIFTER_FILE] = first = lifter_onnx(seed=0)
    path = fetch.fetch_model(LIFTER, base_url=server.url)
    path.unlink()  # the cache is lost, the pin stays; upstream now serves other bytes
    server.routes[LIFTER_FILE] = second = lifter_onnx(seed=1)
    old, new = hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()
    with pytest.raises(
        errors.HashMismatchError, match=rf"sha256 {new} does not match the pinned {old}.*--repin"
    ):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert cache_files(cache) == {"pins.json"} and pins(cache)["lifter"]["sha256"] == old
    assert fetch.repin(LIFTER, base_url=server.url).read_bytes() == second
    assert pins(cache)["lifter"]["sha256"] == new


def test_tampered_cache_file_raises_without_network(server, cache):
    server.routes[LIFTER_FILE] = lifter_onnx()
    path = fetch.fetch_model(LIFTER, base_url=server.url)
    path.write_bytes(lifter_onnx(seed=5))
    with pytest.raises(
        errors.HashMismatchError, match=r"lifter\.onnx: sha256 .* delete 'lifter' from .*pins\.json"
    ):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert len(server.requests) == 1


def test_yolox_prefix_mismatch(server, cache):
    spec = dataclasses.replace(yolox_spec(server, sdk_zip()), sha256_prefix="00000000")
    with pytest.raises(errors.HashMismatchError, match=r"sha256 [0-9a-f]{64} does not start with 00000000"):
        fetch.fetch_model(spec, base_url=server.url)
    assert cache_files(cache) == set()


def test_yolox_html_instead_of_zip(server, cache):
    spec = yolox_spec(server, b"<!DOCTYPE html>")
    server.routes[spec.url.rsplit("/", 1)[-1]] = b"<!DOCTYPE html><p>moved</p>"
    with pytest.raises(errors.FetchError, match=r"is not a zip archive \(starts with '<!DOCTYPE html"):
        fetch.fetch_model(spec, base_url=server.url)
    assert cache_files(cache) == set()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([("../evil.onnx", b"x")], r"entry '\.\./evil\.onnx' would land outside"),
        ([("/tmp/x", b"x")], r"entry '/tmp/x' would land outside"),
        ([("a/../../evil.onnx", b"x")], r"would land outside"),
        ([("C:/evil.onnx", b"x")], r"would land outside"),
        ([symlink_entry("yolox/link", "/etc/passwd")], r"entry 'yolox/link' is a symbolic link"),
    ],
)
def test_unsafe_zip_entries_are_refused(server, cache, tmp_path, extra, message):
    spec = yolox_spec(server, sdk_zip(extra))
    with pytest.raises(errors.UnsafeArchiveError, match=message):
        fetch.fetch_model(spec, base_url=server.url)
    assert cache_files(cache) == set()
    assert not (tmp_path / "evil.onnx").exists() and not (cache / "evil.onnx").exists()


def test_zip_without_or_with_two_end2end(server, cache):
    spec = yolox_spec(server, make_zip([("folder/deploy.json", b"{}")]))
    with pytest.raises(errors.FetchError, match=r"expected exactly one 'end2end\.onnx' entry, found none"):
        fetch.fetch_model(spec, base_url=server.url)
    spec = yolox_spec(server, sdk_zip([("other/end2end.onnx", b"x")]))
    with pytest.raises(errors.FetchError, match=r"found .*/end2end\.onnx, other/end2end\.onnx"):
        fetch.fetch_model(spec, base_url=server.url)
    assert cache_files(cache) == set()


# ---------------------------------------------------------------- interrupts


def test_keyboard_interrupt_mid_download_leaves_nothing(server, cache, monkeypatch):
    data = lifter_onnx() + b"\0" * 300_000  # padding: the stream is cut before the end anyway
    seen_partial: list[set[str]] = []

    def half_then_hang(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()

    class Interrupting:
        """Stands in for the rich bar; pooch calls update() after writing each chunk."""

        def __init__(self, label: str) -> None:
            self.total = 0

        def update(self, n: int) -> None:
            seen_partial.append(cache_files(cache))
            raise KeyboardInterrupt

        def close(self) -> None:
            pass

    server.routes[LIFTER_FILE] = half_then_hang
    monkeypatch.setattr(fetch, "_CHUNK", 16_384)
    monkeypatch.setattr(fetch, "_RichDownloadProgress", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_model(LIFTER, base_url=server.url, progress=True)
    assert any(name.endswith(f".partial/{LIFTER_FILE}") for name in seen_partial[0])  # it was mid-write
    assert cache_files(cache) == set()
    assert not [p for p in (cache / "models").iterdir() if p.name != ".locks"]


def test_keyboard_interrupt_during_extraction_leaves_nothing(server, cache, monkeypatch):
    spec = yolox_spec(server, sdk_zip())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "check_model_contract", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_model(spec, base_url=server.url)
    assert cache_files(cache) == set()


# ---------------------------------------------------------------- offline, models dir, local


def test_offline_never_touches_the_network(server, cache, monkeypatch):
    server.routes[LIFTER_FILE] = lifter_onnx()
    with pytest.raises(errors.OfflineError, match=rf"'lifter' \(lifter\.onnx\).*{LIFTER_FILE} in {cache}"):
        fetch.fetch_model(LIFTER, base_url=server.url, offline=True)
    monkeypatch.setenv("SPINEPOSE_DEPLOY_OFFLINE", "1")
    with pytest.raises(errors.OfflineError):
        fetch.fetch_model(LIFTER, base_url=server.url)
    assert server.requests == []
    path = fetch.fetch_model(LIFTER, base_url=server.url, offline=False)
    assert fetch.fetch_model(LIFTER, base_url=server.url) == path  # cached: fine offline
    assert len(server.requests) == 1


def test_models_dir_is_used_in_place_and_pinned(server, cache, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / LIFTER_FILE).write_bytes(lifter_onnx())
    assert fetch.fetch_model(LIFTER, models_dir=folder, offline=True) == folder / LIFTER_FILE
    assert pins(cache)["lifter"]["source"] == str(folder / LIFTER_FILE)
    monkeypatch.setenv("SPINEPOSE_DEPLOY_MODELS", str(folder))
    (folder / LIFTER_FILE).write_bytes(lifter_onnx(seed=3))  # a different file under the same name
    with pytest.raises(errors.HashMismatchError, match="does not match the pinned"):
        fetch.fetch_model(LIFTER, offline=True)
    (folder / "pose-s-v2.onnx").write_bytes(pose_onnx())  # spec.filename works too
    assert fetch.fetch_model(POSE, offline=True) == folder / "pose-s-v2.onnx"
    assert server.requests == []


def test_models_dir_yolox_zip_is_extracted_offline(server, cache, tmp_path):
    data = sdk_zip()
    spec = yolox_spec(server, data)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / spec.url.rsplit("/", 1)[-1]).write_bytes(data)
    path = fetch.fetch_model(spec, models_dir=folder, offline=True)
    assert path == cache / "models" / "yolox-tiny.onnx" and path.read_bytes() == yolox_onnx()
    assert cache_files(cache) == {"yolox-tiny.onnx", "pins.json"}
    assert server.requests == []


def test_models_dir_errors(cache, tmp_path, monkeypatch):
    with pytest.raises(errors.InputFileError, match=r"models dir .*nope is not a directory"):
        fetch.fetch_model(LIFTER, models_dir=tmp_path / "nope")
    monkeypatch.setenv("SPINEPOSE_DEPLOY_MODELS", str(tmp_path / "gone"))
    with pytest.raises(errors.InputFileError, match=r"\$SPINEPOSE_DEPLOY_MODELS .*gone is not a directory"):
        fetch.fetch_model(LIFTER)
    monkeypatch.setenv("SPINEPOSE_DEPLOY_MODELS", str(tmp_path))
    with pytest.raises(errors.OfflineError, match=rf"in {cache / 'models'}, {tmp_path}\."):
        fetch.fetch_model(LIFTER, offline=True)


def test_local_file_is_contract_checked_not_pinned(cache, tmp_path):
    good = tmp_path / "mine.onnx"
    good.write_bytes(lifter_onnx())
    assert fetch.fetch_model(LIFTER, local=good, offline=True) == good
    assert pins(cache) == {}
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(pose_onnx())
    with pytest.raises(
        errors.ContractError, match=r"bad\.onnx: input 0 \('input'\) has rank 4 .*expected rank 3"
    ):
        fetch.fetch_model(LIFTER, local=bad)
    with pytest.raises(errors.InputFileError, match=r"missing\.onnx for 'lifter' does not exist"):
        fetch.fetch_model(LIFTER, local=tmp_path / "missing.onnx")
    archive = tmp_path / "y.zip"
    archive.write_bytes(sdk_zip())
    with pytest.raises(
        errors.InputFileError, match=r"y\.zip is a zip archive; pass the extracted end2end\.onnx"
    ):
        fetch.fetch_model(get_spec("yolox-tiny"), local=archive)
    html = tmp_path / "page.onnx"
    html.write_bytes(b"<!DOCTYPE html>")
    with pytest.raises(errors.ModelLoadError, match=r"page\.onnx is not an ONNX model"):
        fetch.fetch_model(LIFTER, local=html)


# ---------------------------------------------------------------- contract unit checks


def test_check_contract_details(cache, tmp_path):
    path = tmp_path / "p.onnx"
    path.write_bytes(pose_onnx())
    check_contract(path, POSE)  # symbolic 'N' matches symbolic 'batch'
    with pytest.raises(errors.ContractError, match=r"input 'input' has shape .*dim 2: 256 != 384"):
        check_contract(path, get_spec("pose-x-v1"))
    renamed = dataclasses.replace(
        POSE, outputs=(POSE.outputs[1], dataclasses.replace(POSE.outputs[0], name="xx"))
    )
    with pytest.raises(
        errors.ContractError, match=r"output 'xx' is missing \(graph has \['simcc_x', 'simcc_y'\]\)"
    ):
        check_contract(path, renamed)
    typed = dataclasses.replace(
        POSE, outputs=(dataclasses.replace(POSE.outputs[0], dtype="int64"), POSE.outputs[1])
    )
    with pytest.raises(errors.ContractError, match=r"output 'simcc_x' has dtype float32, expected int64"):
        check_contract(path, typed)
    ranked = dataclasses.replace(LIFTER, inputs=(dataclasses.replace(LIFTER.inputs[0], shape=(37, 2)),))
    lifter = tmp_path / "l.onnx"
    lifter.write_bytes(lifter_onnx())
    with pytest.raises(
        errors.ContractError, match=r"input 0 \('x'\) has rank 3 \(batch, 37, 2\), expected rank 2"
    ):
        check_contract(lifter, ranked)


# ---------------------------------------------------------------- CLI: offline switch and download failures


def _infer_real(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    from spinepose_deploy.paths import package_data_dir

    empty = tmp_path / "models"
    empty.mkdir(exist_ok=True)
    full = {**os.environ, "SPINEPOSE_DEPLOY_MODELS": str(empty), **env}
    command = [sys.executable, "-c", "from spinepose_deploy.cli import run; run()", "infer",
               str(package_data_dir() / "astronaut.jpg"), "--weights", "real"]  # fmt: skip
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=120)


def test_offline_env_is_honoured_with_weights_real(server, tmp_path):
    """SPINEPOSE_DEPLOY_OFFLINE=1 never touches the network, whatever --weights says."""
    done = _infer_real(tmp_path, {"SPINEPOSE_DEPLOY_OFFLINE": "1", fetch.MIRROR_ENV: server.url})
    assert server.requests == []
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "is not available offline" in err, err


def test_download_failure_is_a_one_line_user_error_with_what_to_do(server, tmp_path):
    done = _infer_real(tmp_path, {fetch.MIRROR_ENV: server.url})
    assert server.requests, "expected a download attempt when not offline"
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()[-1]
    assert err.startswith("error: could not download ") and "HTTP 404" in err, done.stderr
    assert "SPINEPOSE_DEPLOY_OFFLINE=1" in err and "Traceback" not in done.stderr
