"""``infer s3://... --ray --json s3://...`` against moto's S3 server on 127.0.0.1: the single-machine JSON,
a worker killed mid-upload, a rerun that skips what is done, one-line errors, no credentials in any output."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_ray import _files, _image, _video

from spinepose_deploy.cli import main
from spinepose_deploy.errors import BackendUnavailableError, InputFileError, InvalidOptionError, UserError
from spinepose_deploy.pipeline.spec import PipelineSpec
from spinepose_deploy.scale.objstore import Store, as_url, scrub
from spinepose_deploy.scale.remote import Stores
from spinepose_deploy.scale.sources import resolve_sources

SECRET = "Sup3rSecretValue-never-printed"  # the store's secret key: must appear in no output or message
KEY_ID = "AKIASPINEPOSETEST01"
OPTIONS: dict = {}  # 2D only: lifting's state is covered by test_ray.py; this module is about the store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free port, credentials and endpoint in the environment (the chain s3fs reads)."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        import fsspec

        fs = fsspec.filesystem("s3")
        fs.mkdir("inputs")
        fs.mkdir("outputs")
        yield fs
    server.stop()


@pytest.fixture(scope="module")
def local_ray(s3, session_cache):
    """One 2-CPU local Ray for the module, started after the S3 environment so its workers inherit it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two images and two short videos (8 and 6 frames)."""
    folder = tmp_path_factory.mktemp("media")
    _image("astronaut.jpg", folder / "a.jpg")
    _image("grace_hopper.jpg", folder / "b.png")
    _video(folder / "c.avi")
    _video(folder / "d.avi", count=6, size=(256, 320))
    return folder


@pytest.fixture(scope="module")
def bundle(standin_paths):
    from spinepose_deploy.pipeline.load import BundleRecipe

    return BundleRecipe("onnxruntime", "fp32", "standin").cached()


@pytest.fixture(scope="module")
def reference(media, bundle, tmp_path_factory):
    from spinepose_deploy.pipeline.infer import OutputPlan, run_infer
    from spinepose_deploy.pipeline.io import resolve_input
    from spinepose_deploy.pipeline.pipeline import Pipeline

    out = tmp_path_factory.mktemp("reference")
    with Pipeline.from_bundle(bundle, **OPTIONS) as pipeline:
        run_infer(pipeline, OutputPlan(resolve_input(media), out / "json"))
    return _files(out / "json")


def _download(fs, prefix: str, local: Path) -> dict[str, bytes]:
    fs.invalidate_cache()
    if fs.exists(prefix):
        fs.get(prefix, str(local), recursive=True)
    return _files(local) if local.exists() else {}


# ---------------------------------------------------------------- fast: no Ray


def test_urls_errors_name_the_bucket_or_key_and_never_the_secret(s3, media):
    assert as_url(Path("s3://bucket/out/")) == "s3://bucket/out" and as_url(Path("out/s3")) is None
    assert scrub("s3://AKIA:hunter2@b/k?X-Amz-Signature=abc&x=1") == "s3://***@b/k?X-Amz-Signature=***&x=1"
    with pytest.raises(UserError, match="carries credentials") as info:
        Store.parse(f"s3://{KEY_ID}:{SECRET}@inputs/x", "INPUT")
    assert SECRET not in str(info.value)
    with pytest.raises(UserError, match=r"names no bucket"):
        resolve_sources("s3://")
    with pytest.raises(InputFileError, match=r"^INPUT: bucket 'no-such-bucket' does not exist"):
        resolve_sources("s3://no-such-bucket/clips/")
    s3.pipe("inputs/notes/readme.txt", b"no media here")
    with pytest.raises(InputFileError, match=r"no images or videos under 's3://inputs/notes/' \(1 objects"):
        resolve_sources("s3://inputs/notes/")
    with pytest.raises(InputFileError, match=r"^--json: bucket 'missing-out' does not exist"):
        Stores.for_run(resolve_sources(media), "s3://missing-out/run/", None)
    with pytest.raises(InvalidOptionError, match="both in an object store or both local"):
        Stores.for_run(resolve_sources(media), "s3://outputs/run/", media / "vis")
    from moto import settings  # the server runs in this process: switch its credential checks on

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    try:
        denied = r"^INPUT: access to 's3://inputs/clips' \(bucket 'inputs'\) was denied"
        with pytest.raises(UserError, match=denied) as info:
            resolve_sources("s3://inputs/clips/")
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    assert "\n" not in str(info.value) and SECRET not in str(info.value) and "Access Key Id" in str(info.value)


def test_no_credentials_at_all_is_one_line_naming_the_bucket(s3, tmp_path):
    # a fresh process without any credential source (no instance metadata lookup: nothing leaves this machine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"])
    done = subprocess.run(
        [sys.executable, "-m", "spinepose_deploy.cli", "infer", "s3://inputs/clips/", "--ray", "--json",
         str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: INPUT: no credentials for 's3://inputs/clips'")
    assert "Traceback" not in done.stderr



def test_a_missing_store_library_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # `import fsspec` raises ImportError
    hint = r"^gs:// URLs need gcsfs\. Install: pip install 'spinepose-deploy\[gcs\]'"
    with pytest.raises(BackendUnavailableError, match=hint):
        resolve_sources("gs://bucket/videos/")


# ---------------------------------------------------------------- on a local Ray instance


def test_s3_run_killed_mid_upload_matches_local_infer_and_a_rerun_skips_it_all(
    s3, local_ray, media, bundle, reference, tmp_path, capsys, caplog
):
    from spinepose_deploy.scale import infer_on_ray

    class KillMidUpload:  # defined here: Ray pickles it by value for the workers
        """Builds the pipeline; in the worker process, SIGKILLs it once a video's first 3 frame JSONs are uploaded
        (once per test: ``flag``), so the store holds part of that video's outputs and no marker."""

        def __init__(self, spec: PipelineSpec, flag: Path) -> None:
            self.spec, self.flag = spec, flag

        def __call__(self):
            import signal

            from spinepose_deploy.scale import remote

            original, flag = remote.upload, self.flag
            remote.UPLOAD_CHUNK = 3  # the small videos' 6-8 frame JSONs take 2-3 calls: kill after the first

            def upload(store, files):
                keys = original(store, files)
                if "/" in files[0][1] and not flag.exists():
                    flag.touch()
                    os.kill(os.getpid(), signal.SIGKILL)
                return keys

            remote.upload = upload
            return self.spec.build()

        def settings(self):
            return self.spec.settings()  # the same fingerprint as the CLI's rerun

    for path in sorted(media.iterdir()):
        s3.put_file(str(path), f"inputs/clips/{path.name}")
    caplog.set_level(logging.INFO)
    flag = tmp_path / "killed"
    factory = KillMidUpload(PipelineSpec(bundle=str(bundle), options=OPTIONS), flag)
    summary = infer_on_ray("s3://inputs/clips/", pipeline=factory, out_json="s3://outputs/run/", max_retries=0,
                           progress=False)  # fmt: skip
    assert flag.exists() and summary.worker_restarts == 1
    (killed,) = summary.failed  # no retry asked: the video whose worker died mid-upload is left for the rerun
    assert killed.name in ("c", "d") and "worker died" in killed.error
    assert sorted(o.name for o in summary.done) == sorted({"a", "b", "c", "d"} - {killed.name})
    assert {o.source for o in summary.done} <= {f"s3://inputs/clips/{n}" for n in ("a.jpg", "b.png", "c.avi", "d.avi")}
    s3.invalidate_cache()
    partial = s3.find(f"outputs/run/{killed.name}/")
    assert len(partial) == 3 and not s3.exists(f"outputs/run/.spinepose-ray/markers/{killed.name}.done.json")

    # the CLI, as a user runs it: only the killed video is done again, then everything matches local infer
    argv = ["infer", "s3://inputs/clips/", "--bundle", str(bundle), "--json", "s3://outputs/run/", "--ray"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "1 done, 3 skipped, 0 failed" in out.out, out.out
    got = _download(s3, "outputs/run", tmp_path / "got")
    assert sorted(got) == sorted(reference), "outputs (and nothing else: no temporaries) as the local run"
    assert [name for name in got if got[name] != reference[name]] == []
    marker = json.loads(s3.cat_file("outputs/run/.spinepose-ray/markers/c.done.json"))
    assert marker["frames"] == 8 and len(marker["outputs"]) == 8 and marker["source"] == "s3://inputs/clips/c.avi"
    assert all(item["path"].startswith("s3://outputs/run/c/frame_") for item in marker["outputs"])

    # and once more: everything is done, nothing is uploaded again
    before = {k: i["LastModified"] for k, i in s3.find("outputs/run", detail=True).items() if "summary" not in k}
    assert main(argv) == 0
    out2 = capsys.readouterr()
    assert "0 done, 4 skipped, 0 failed" in out2.out and "s3://outputs/run/.spinepose-ray/summary.json" in out2.out
    s3.invalidate_cache()
    after = {k: i["LastModified"] for k, i in s3.find("outputs/run", detail=True).items() if "summary" not in k}
    assert after == before
    written = json.loads(s3.cat_file("outputs/run/.spinepose-ray/summary.json"))
    assert written["counts"] == {"done": 0, "skipped": 4, "failed": 0}
    everything = out.out + out.err + out2.out + out2.err + caplog.text + json.dumps(written) + json.dumps(marker)
    assert SECRET not in everything and KEY_ID not in everything


@pytest.mark.slow
def test_split_videos_from_and_to_s3(s3, local_ray, media, bundle, reference, session_cache, tmp_path):
    from spinepose_deploy.scale import infer_on_ray

    spec = PipelineSpec(bundle=str(bundle), options=OPTIONS)
    summary = infer_on_ray(media, pipeline=spec, out_json="s3://outputs/from-local/", segment_seconds=0.5,
                           progress=False)  # fmt: skip
    assert len(summary.done) == 4 and summary.segments == 2  # c.avi in 2 segments, stitched into the store
    marker = json.loads(s3.cat_file("outputs/from-local/.spinepose-ray/markers/c.done.json"))
    assert marker["segments"] == 2 and len(marker["outputs"]) == 8
    assert _download(s3, "outputs/from-local", tmp_path / "a") == reference
    local = tmp_path / "b"
    for path in sorted(media.iterdir()):
        s3.put_file(str(path), f"inputs/again/{path.name}")
    summary = infer_on_ray("s3://inputs/again/", pipeline=spec, out_json=local, segment_seconds=0.5, progress=False)
    assert len(summary.done) == 4 and _files(local) == reference
    assert summary.segments == 2 and summary.actors == 2  # c.avi probed on a worker, split, stitched
    assert not list((session_cache / "ray-inputs").glob("*/*.avi"))  # the nodes' copies are gone
    shutil.rmtree(local)
