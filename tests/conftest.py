"""Shared fixtures: a per-session cache (the demo set is generated once) and the real data path."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ../shared/data relative to the repository root: real subsets for integration tests.
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the whole session, holding the generated demo dataset."""
    from stylecls.data.datasets import demo

    path = tmp_path_factory.mktemp("stylecls-cache")
    demo.generate(path / "demo")
    return path


@pytest.fixture
def demo_env(demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``STYLECLS_CACHE`` at the session cache (demo generated once); returns that folder."""
    monkeypatch.setenv("STYLECLS_CACHE", str(demo_cache))
    return demo_cache


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private ``STYLECLS_CACHE`` for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STYLECLS_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data subsets; skips the test where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (24, 18)) -> Path:
    """A small random RGB image; the format follows the extension (jpg, png, bmp, ...)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def make_images():
    """``make_images(root, ["a/b/c.jpg", ...])`` writes tiny distinct images; returns their paths."""

    def make(root: Path, relpaths: list[str], size: tuple[int, int] = (24, 18)) -> list[Path]:
        return [write_image(root / rel, seed=i, size=size) for i, rel in enumerate(relpaths)]

    return make


@pytest.fixture
def http_folder(tmp_path: Path):
    """``(folder, url)``: a local web server for an empty folder (files written there are served)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
