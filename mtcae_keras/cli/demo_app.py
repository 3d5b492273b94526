"""A local web page to try a model on a video: probabilities, annotated frames, attention.

    python -m mtcae_keras.cli.demo_app --run runs/demo [--run OTHER_RUN ...] [--port 8000]
    (installed: mtcae-demo-app --run ...), then open http://127.0.0.1:8000

Upload a video file or ask for a generated synthetic-face clip, choose one of the runs (a
train.py run dir, a SavedModel or an MTCAEDFER preset), and the page shows the expression
probabilities, the 16 sampled frames with the predicted boxes and landmarks, and, for a
Keras model, each decoder's attention on the frames. The standard library serves it (no web
framework to install); it listens on 127.0.0.1 unless --host says otherwise.
"""

import argparse
import base64
import http.server
import json
import os
import sys
import tempfile
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from mtcae_keras.cli import predict  # noqa: E402
from mtcae_keras.data.video_reader import VideoDecodeError  # noqa: E402
from mtcae_keras.data.video_reader import read_video  # noqa: E402

MAX_UPLOAD = 200 << 20  # bytes

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mtcae-keras demo</title>
<style>body{font-family:sans-serif;margin:2em;max-width:70em}img{max-width:100%;margin:.5em 0}
td{padding:0 .8em}#error{color:#b00}</style></head>
<body><h1>mtcae-keras: dynamic facial expression recognition</h1>
<p><label>Model <select id="run">__OPTIONS__</select></label></p>
<p><input type="file" id="video" accept="video/*">
<button id="predict">Predict</button> or <button id="example">a generated example</button></p>
<p id="status"></p><p id="error"></p>
<h2 id="top"></h2><table id="probabilities"></table>
<img id="annotated" alt=""><img id="attention" alt="">
<script>
async function show(response) {
  const result = await response.json();
  document.getElementById("status").textContent = "";
  if (!response.ok) { document.getElementById("error").textContent = result.error; return; }
  document.getElementById("error").textContent = "";
  document.getElementById("top").textContent = result.expression;
  const rows = Object.entries(result.probabilities).map(
    ([name, p]) => `<tr><td>${name}</td><td>${(100 * p).toFixed(1)}%</td></tr>`);
  document.getElementById("probabilities").innerHTML = rows.join("");
  document.getElementById("annotated").src = result.annotated;
  document.getElementById("attention").src = result.attention || "";
}
function run() { return encodeURIComponent(document.getElementById("run").value); }
document.getElementById("predict").onclick = async () => {
  const file = document.getElementById("video").files[0];
  if (!file) { document.getElementById("error").textContent = "choose a video file"; return; }
  document.getElementById("status").textContent = "predicting...";
  show(await fetch(`/predict?run=${run()}`, {method: "POST", body: file,
                                               headers: {"X-Filename": file.name}}));
};
document.getElementById("example").onclick = async () => {
  document.getElementById("status").textContent = "rendering and predicting...";
  show(await fetch(`/example?run=${run()}`, {method: "POST"}));
};
</script></body></html>
"""


class DemoModels:
    """The runs the page offers, each loaded once: the Keras task model when there is one
    (a run dir or a preset: it predicts, unless a SavedModel is there too, and draws the
    attention), else the SavedModel.

    Args:
        runs: list of paths: train.py run dirs, SavedModel folders or MTCAEDFER presets.
    """

    def __init__(self, runs):
        if not runs:
            raise ValueError("give at least one --run")
        self.runs = {os.path.basename(os.path.normpath(run)) or run: run for run in runs}
        self._loaded = {}

    def load(self, name):
        """`(predict, (frames, height, width), class names, task model or None)` of a run."""
        if name not in self.runs:
            raise KeyError(f"no run {name!r}; choose one of {sorted(self.runs)}")
        if name not in self._loaded:
            from mtcae_keras import MTCAEDFER

            path, task = self.runs[name], None
            try:
                task = MTCAEDFER.from_preset(path)
            except (ValueError, OSError):  # a SavedModel alone: no attention maps
                pass
            folder = predict.saved_model_folder(path)
            if folder is None and task is None:
                raise ValueError(f"{path}: not a SavedModel, a run dir or an MTCAEDFER preset")
            serving = predict.serving_predictor(folder) if folder else predict.task_predictor(task)
            self._loaded[name] = (*serving, task)
        return self._loaded[name]

    def predict_file(self, path, name):
        """The page's result for the video at `path` with run `name` (JSON-able)."""
        serving, (frames_needed, height, width), names, task = self.load(name)
        frames, info = read_video(path, frames_needed, (height, width))
        outputs = serving(frames[None])
        probabilities, caption = predict.ranked(outputs["expression_probabilities"][0], names)
        with tempfile.TemporaryDirectory(prefix="mtcae_demo_") as folder:
            annotated = os.path.join(folder, "annotated.png")
            predict.annotate(frames, outputs, annotated, caption=caption)
            result = {
                "run": name,
                "expression": next(iter(probabilities)),
                "probabilities": probabilities,
                "source_frames": info["frame_count"],
                "annotated": _data_url(annotated),
                "attention": None,
            }
            if task is not None:
                try:
                    figure = os.path.join(folder, "attention.png")
                    predict.attention_figure(task, frames, figure, caption)
                    result["attention"] = _data_url(figure)
                except ValueError:  # stl / MLP decoders: no cross-attention to show
                    pass
        return result

    def predict_example(self, name, label="HAP", actor=0):
        """A rendered synthetic-face clip of `label`, predicted by run `name`."""
        from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
        from mtcae_keras.data.video_reader import write_video

        clip = SyntheticFaceRenderer(image_size=96, num_frames=24, seed=7).render(actor, label, 0)
        with tempfile.TemporaryDirectory(prefix="mtcae_demo_") as folder:
            path = write_video(os.path.join(folder, "example.mp4"), clip["video"])
            return {**self.predict_file(path, name), "rendered": label}


def _data_url(path):
    with open(path, "rb") as file:
        return "data:image/png;base64," + base64.b64encode(file.read()).decode()


def make_server(models, host="127.0.0.1", port=8000):
    """A `ThreadingHTTPServer` serving the page for `models` (`port=0`: any free port)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's names)
            if urllib.parse.urlparse(self.path).path != "/":
                return self._reply(404, {"error": "not found"})
            options = "".join(f'<option value="{n}">{n}</option>' for n in models.runs)
            self._send(
                200, "text/html; charset=utf-8", PAGE.replace("__OPTIONS__", options).encode()
            )

        def do_POST(self):  # noqa: N802
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            name = query.get("run", [next(iter(models.runs))])[0]
            try:
                if url.path == "/example":
                    return self._reply(200, models.predict_example(name))
                if url.path != "/predict":
                    return self._reply(404, {"error": "not found"})
                size = int(self.headers.get("Content-Length", 0))
                if not 0 < size <= MAX_UPLOAD:
                    limit = f"upload a video of 1 B to {MAX_UPLOAD >> 20} MB (got {size} B)"
                    return self._reply(400, {"error": limit})
                suffix = os.path.splitext(self.headers.get("X-Filename", ""))[1] or ".mp4"
                with tempfile.TemporaryDirectory(prefix="mtcae_upload_") as folder:
                    path = os.path.join(folder, "upload" + suffix[:8])
                    with open(path, "wb") as file:
                        file.write(self.rfile.read(size))
                    return self._reply(200, models.predict_file(path, name))
            except VideoDecodeError as error:
                return self._reply(400, {"error": f"cannot read video: {error.reason}"})
            except KeyError as error:
                return self._reply(400, {"error": str(error.args[0])})

        def _reply(self, status, value):
            self._send(status, "application/json", json.dumps(value).encode())

        def _send(self, status, kind, body):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: one line per request is noise here
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True,
                        help="run dir, SavedModel or preset (repeat for several)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    models = DemoModels(args.run)
    for name in models.runs:  # load now: a wrong path fails here, not on the first request
        try:
            models.load(name)
        except ValueError as error:
            sys.exit(str(error))
    server = make_server(models, args.host, args.port)
    print(f"serving {sorted(models.runs)} on http://{args.host}:{server.server_port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
