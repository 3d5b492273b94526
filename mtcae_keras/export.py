"""SavedModel export for TF Serving: uint8 video in, named predictions out."""

import keras
import tensorflow as tf

from mtcae_keras.models.video_preprocessor import VideoPreprocessor


def export_saved_model(model, path, normalization=None, class_names=None):
    """Writes a SavedModel whose `serving_default` takes raw uint8 clips.

    Signature: `video` uint8 `(None, frames, height, width, 3)` (any batch size) ->
    `expression_probabilities` `(None, C)`, `expression_logits`, and, when the model has them,
    `boxes` `(None, frames, 4)` and `landmarks` `(None, frames, 10)` scaled to [0, 1]. A
    model of the `affect` tasks gives the expression per frame `(None, frames, C)`, and
    `valence`, `arousal` `(None, frames)` and `action_unit_probabilities` `(None, frames, 12)`.
    Normalisation happens inside (`VideoPreprocessor`: the model's own for an `MTCAEDFER`),
    so clients send pixels as decoded. Loading needs only TensorFlow (`tf.saved_model.load`),
    not this package.

    Args:
        model: an `MTCAEDFER` or a `build_mtcae_model` model.
        path: str. Output folder.
        normalization: str. The `NORMALIZATIONS` key the model was trained with: an
            `MTCAEDFER`'s preprocessor's if None (else ImageNet's); refused if it differs.
        class_names: list of str, stored as the `class_names` asset-free constant (an
            `MTCAEDFER`'s own if None).
    """
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        preprocessor = VideoPreprocessor(normalization=normalization or "imagenet")
    elif normalization not in (None, preprocessor.normalization):
        raise ValueError(f"normalization={normalization!r}, but the model's preprocessor"
                         f" normalises with {preprocessor.normalization!r}.")  # fmt: skip
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    shape = (None,) + tuple(model.input.shape[1:])
    archive = keras.export.ExportArchive()
    archive.track(model)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.uint8, name="video")])
    def serve(video):
        pixels = preprocessor(video)
        outputs = model(pixels, training=False)
        if not isinstance(outputs, dict):
            outputs = {"expression": outputs}
        logits = tf.cast(outputs["expression"], tf.float32)
        result = {
            "expression_logits": logits,
            "expression_probabilities": tf.nn.softmax(logits, axis=-1),
        }
        for name in ("boxes", "landmarks", "valence", "arousal"):
            if name in outputs:
                result[name] = tf.cast(outputs[name], tf.float32)
        if "action_units" in outputs:
            result["action_unit_probabilities"] = tf.sigmoid(
                tf.cast(outputs["action_units"], tf.float32)
            )
        return result

    archive.add_endpoint("serving_default", serve)
    if class_names is not None:
        archive.add_variable_collection(
            "class_names", [tf.Variable(list(class_names), trainable=False, name="class_names")]
        )
    archive.write_out(path, verbose=False)
    return path
