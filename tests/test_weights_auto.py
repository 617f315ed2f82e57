"""``weights="auto"``: cached real weights, else a download when allowed (failing fast offline), else the
packaged trained stand-in, else the random stand-in; said once per graph."""

from __future__ import annotations

import logging
import socket

import pytest

from spinepose_deploy.zoo import fetch, source
from spinepose_deploy.zoo.specs import get_spec
from spinepose_deploy.zoo.standins import trained


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Each test starts with no remembered failed hosts and nothing said yet."""
    monkeypatch.setattr(source, "_FAILED_HOSTS", set())
    monkeypatch.setattr(source, "_SAID", set())
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SPINEPOSE_DEPLOY_OFFLINE", raising=False)
    monkeypatch.delenv("SPINEPOSE_DEPLOY_MODELS", raising=False)
    monkeypatch.delenv("SPINEPOSE_DEPLOY_MIRROR", raising=False)


def _closed_port() -> int:
    """A localhost port nothing listens on: a connection there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_auto_takes_the_trained_standin_else_the_random_one_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_OFFLINE", "1")
    monkeypatch.setattr(fetch, "_stream", lambda *a, **k: pytest.fail("downloaded although offline"))
    with caplog.at_level(logging.WARNING, logger="spinepose_deploy.zoo.source"):
        lifter = source.resolve_graph(get_spec("lifter"))
        again = source.resolve_graph(get_spec("lifter"))
        # the package has no trained pose-m: the random stand-in (None here: resolve_graph then builds it)
        assert source._auto(get_spec("pose-m-v2"), None, None) is None
    assert lifter == again and lifter.standin and lifter.path == trained.trained_graph(get_spec("lifter"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one line per graph, not per call
    assert "lifter" in lines[0] and "downloads off" in lines[0] and "trained stand-in" in lines[0]
    assert "pose-m-v2" in lines[1] and "random stand-in" in lines[1]


def test_ci_skips_the_download(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(fetch, "_stream", lambda *a, **k: pytest.fail("downloaded on CI"))
    assert source.resolve_graph(get_spec("lifter")).path == trained.trained_graph(get_spec("lifter"))


def test_an_unreachable_host_fails_fast_once_and_falls_through(monkeypatch, caplog):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_MIRROR", f"http://127.0.0.1:{_closed_port()}/models")
    tries = []
    real_stream = fetch._stream

    def counting_stream(url, target, progress):
        tries.append(url)
        return real_stream(url, target, progress)

    monkeypatch.setattr(fetch, "_stream", counting_stream)
    with caplog.at_level(logging.WARNING, logger="spinepose_deploy.zoo.source"):
        lifter = source.resolve_graph(get_spec("lifter"))
        pose = source.resolve_graph(get_spec("pose-s-v2"))
    assert len(tries) == 1  # the host failed once: the next graph does not ask it again
    assert lifter.path == trained.trained_graph(get_spec("lifter"))
    assert pose.path == trained.trained_graph(get_spec("pose-s-v2"))
    assert "the download failed (could not download" in caplog.records[0].getMessage()
    assert "failed earlier" in caplog.records[1].getMessage()


def test_real_weights_in_the_models_dir_win(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINEPOSE_DEPLOY_OFFLINE", "1")
    spec = get_spec("lifter")
    graph = trained.trained_graph(spec)
    (tmp_path / spec.filename).write_bytes(graph.read_bytes())  # a copy stands in for the released file
    found = source.resolve_graph(spec, models_dir=tmp_path)
    assert found.path == tmp_path / spec.filename
