"""tools/extract_frame_features.py: per-frame encoder features of a dataset, in HDF5, that the
ABAW4 temporal models train on."""

import keras
import numpy as np

from mtcae_keras import VideoMAEBackbone
from mtcae_keras import build_temporal_multitask_model
from mtcae_keras.data.input_pipeline import load_builder
from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling
from mtcae_keras.models.video_preprocessor import normalize_pixels
from mtcae_keras.training.affect_losses import affect_losses
from tools import extract_frame_features as tool


def test_extracted_features_are_the_encoders_and_a_temporal_model_trains_on_them(tmp_path):
    data_dir = str(tmp_path / "tfds")
    builder = load_builder("synthetic_faces", data_dir=data_dir, config="tiny", prepare=True)
    keras.utils.set_random_seed(3)
    encoder = VideoMAEBackbone.from_preset("videomae_tiny", image_size=32, num_frames=8)
    weights, _ = encoder.save_converted(str(tmp_path / "encoder.weights.h5"))
    output = str(tmp_path / "features.h5")
    assert tool.main(["--dataset", "synthetic_faces", "--dataset-config", "tiny",
                      "--encoder", weights, "--data-dir", data_dir, "--batch-size", "4",
                      "--splits", "fold0", "fold3", "--output", output]) == 0  # fmt: skip

    fold = tool.load_frame_features(output, "fold3")
    assert fold["features"].shape == (6, 16, encoder.hidden_dim)  # two 8-frame windows
    assert fold["attributes"]["encoder"] == weights and len(fold["attributes"]["class_names"]) == 6
    assert fold["action_units"].shape == (6, 16, 12) and fold["valence"].shape == (6, 16)
    # The first clip, independently: its two windows through the encoder, pooled per frame.
    import tensorflow_datasets as tfds

    clip = next(iter(tfds.as_numpy(builder.as_dataset(split="fold3"))))
    assert fold["clip_id"][0] == clip["clip_id"].decode()
    pixels = np.asarray(normalize_pixels(clip["video"][None], "imagenet"))
    pool = FrameFeaturePooling(encoder.token_grid, encoder.tubelet_size)
    expected = np.concatenate([pool(encoder(pixels[:, i : i + 8])) for i in (0, 8)], axis=1)
    np.testing.assert_allclose(fold["features"][:1], expected, atol=1e-5)
    np.testing.assert_array_equal(fold["valence"][0], clip["valence"])

    train = tool.load_frame_features(output, "fold0")
    model = build_temporal_multitask_model(
        encoder.hidden_dim, 16, "feedback", "lstm", hidden_dim=32, num_layers=2,
        tasks={"valence": 1, "arousal": 1, "action_units": 12}, head_dims=(16,),
        feed_sources=("action_units",), feed_targets=("valence", "arousal"),
    )  # fmt: skip
    model.compile("adam", loss=affect_losses(model.output))
    labels = {task: train[task] for task in ("valence", "arousal", "action_units")}
    history = model.fit(train["features"], labels, epochs=2, batch_size=3, verbose=0).history
    assert np.isfinite(history["loss"]).all()
