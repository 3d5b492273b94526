"""The demo web app over HTTP: the page, an uploaded clip, a generated one, bad uploads."""

import base64
import io
import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from mtcae_keras import MTCAEDFER
from mtcae_keras import VideoMAEBackbone
from mtcae_keras import build_mtcae_model
from mtcae_keras.cli.demo_app import DemoModels
from mtcae_keras.cli.demo_app import make_server
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import read_video
from mtcae_keras.data.video_reader import write_video

CLASSES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A served tiny run dir (checkpoint + config, as train.py leaves it) on a free port."""
    folder = tmp_path_factory.mktemp("app")
    run = folder / "tiny_run"
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    model = build_mtcae_model(backbone, "cascaded_vit", 6, num_frames=4, decoder="tiny")
    for weight in model.weights:  # away from the zero-initialised heads: distinct classes
        weight.assign(weight + np.random.default_rng(3).normal(0, 0.05, weight.shape))
    os.makedirs(run / "checkpoints")
    model.save(run / "checkpoints" / "best.keras")
    with open(run / "config.json", "w") as file:
        json.dump({"strategy": "cascaded_vit", "class_names": CLASSES, "decoder": "tiny",
                   "freeze_encoder": True, "normalization": "imagenet"}, file)  # fmt: skip
    server = make_server(DemoModels([str(run)]), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", run, folder
    server.shutdown()
    server.server_close()


def _post(url, body=b"", headers=None):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _image(data_url):
    import matplotlib.image

    assert data_url.startswith("data:image/png;base64,")
    return matplotlib.image.imread(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_page_upload_and_example(app):
    url, run, folder = app
    with urllib.request.urlopen(url + "/", timeout=30) as response:
        page = response.read().decode()
    assert 'id="video"' in page and '<option value="tiny_run">' in page
    clip = SyntheticFaceRenderer(image_size=48, num_frames=20).render(4, "SAD", 0)["video"]
    path = write_video(str(folder / "clip.mp4"), clip)
    status, result = _post(url + "/predict?run=tiny_run", open(path, "rb").read(),
                           {"X-Filename": "clip.mp4"})  # fmt: skip
    assert status == 200, result
    # What the task model of the same run predicts for the same 4 frames.
    frames = read_video(path, 4, (32, 32))[0]
    expected = MTCAEDFER.from_preset(str(run)).predict_video(frames[None])
    probabilities = expected["expression_probabilities"][0]
    assert result["expression"] == CLASSES[int(np.argmax(probabilities))]
    np.testing.assert_allclose([result["probabilities"][c] for c in CLASSES], probabilities,
                               atol=1e-5)  # fmt: skip
    assert list(result["probabilities"].values()) == sorted(result["probabilities"].values(),
                                                            reverse=True)  # fmt: skip
    assert _image(result["annotated"]).shape[0] > 100
    assert _image(result["attention"]).shape[0] > 100  # one row per decoder
    status, example = _post(url + "/example?run=tiny_run")
    assert status == 200 and example["rendered"] == "HAP" and example["expression"] in CLASSES


def test_bad_uploads_are_refused_with_a_message(app):
    url, _, _ = app
    status, result = _post(url + "/predict", b"not a video at all", {"X-Filename": "x.mp4"})
    assert status == 400 and result["error"].startswith("cannot read video")
    status, result = _post(url + "/predict")
    assert status == 400 and "upload a video" in result["error"]
    status, result = _post(url + "/predict?run=nope", b"x")
    assert status == 400 and "no run 'nope'" in result["error"]


def test_in_a_real_browser(app, tmp_path):
    """Headless Chromium (Debian's, driven by Selenium): pick a clip, press Predict, wait for
    the result; the top class is the model's and both images rendered."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run does)")
    url, run, folder = app
    clip = SyntheticFaceRenderer(image_size=48, num_frames=20).render(2, "FEA", 0)["video"]
    path = write_video(str(tmp_path / "upload.mp4"), clip)
    frames = read_video(path, 4, (32, 32))[0]
    expected = MTCAEDFER.from_preset(str(run)).predict_video(frames[None])
    top = CLASSES[int(np.argmax(expected["expression_probabilities"][0]))]

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(flag)
    session = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    try:
        session.get(url + "/")
        session.find_element(By.ID, "video").send_keys(path)
        session.find_element(By.ID, "predict").click()
        WebDriverWait(session, 120).until(lambda s: s.find_element(By.ID, "top").text)
        assert session.find_element(By.ID, "top").text == top
        rendered = "return [...document.images].map(i => i.complete && i.naturalWidth)"
        WebDriverWait(session, 30).until(lambda s: all(s.execute_script(rendered)))
        assert len(session.find_elements(By.CSS_SELECTOR, "#probabilities tr")) == 6
        session.save_screenshot(str(tmp_path / "demo_app.png"))
    finally:
        session.quit()
    assert os.path.getsize(tmp_path / "demo_app.png") > 10_000
