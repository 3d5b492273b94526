"""`--validation actors|fold|test`: which clips train, select checkpoints and test."""

import numpy as np
import pytest

from mtcae_keras.data.input_pipeline import fold_protocol
from mtcae_keras.data.input_pipeline import make_fold_datasets
from mtcae_keras.data.input_pipeline import split_metadata
from mtcae_keras.data.input_pipeline import validation_actors


@pytest.fixture(scope="module")
def forty_actors(tmp_path_factory):
    """synthetic_faces with 40 actors (8 per fold) x 6 classes x 1 clip of 2 16x16 frames."""
    from tfds_builders.synthetic_faces.synthetic_faces_dataset_builder import Builder
    from tfds_builders.synthetic_faces.synthetic_faces_dataset_builder import SyntheticFacesConfig

    config = SyntheticFacesConfig(name="forty_actors", image_size=16, num_frames=2,
                                  num_actors=40, clips_per_class=1)  # fmt: skip
    builder = Builder(config=config, data_dir=str(tmp_path_factory.mktemp("tfds")))
    builder.download_and_prepare()
    return builder


def _actors(builder, selection):
    return set(split_metadata(builder, selection, ("actor",))["actor"].astype(str).tolist())


@pytest.mark.parametrize("validation", ["actors", "fold", "test"])
def test_no_actor_trains_and_tests_and_the_datasets_hold_the_selected_clips(
    forty_actors, validation
):
    protocol = fold_protocol(forty_actors, 2, validation, seed=0)
    actors = {part: _actors(forty_actors, selection) for part, selection in protocol.items()}
    assert actors["test"] == {f"S{i:03d}" for i in range(2, 40, 5)}  # fold2: actor i % 5 == 2
    assert not actors["train"] & actors["test"]
    assert not actors["train"] & actors["validation"]
    if validation == "test":  # selects on the test fold, and trains on every other fold
        assert actors["validation"] == actors["test"] and len(actors["train"]) == 32
    else:
        assert not actors["validation"] & actors["test"]
    if validation == "actors":  # 3 of the 32 training actors (round(0.1 * 32)) select
        assert len(actors["validation"]) == 3 and len(actors["train"]) == 29
        non_test = 6 * 32
        assert protocol["train"].num_examples == 6 * 29 >= 0.85 * non_test
    if validation == "fold":  # the next fold: 60% of the clips train
        assert actors["validation"] == {f"S{i:03d}" for i in range(3, 40, 5)}
    data = make_fold_datasets(forty_actors, 2, batch_size=7, protocol=protocol)
    for part, dataset in data.items():
        clips = 6 * len(actors[part])
        batches = -(-clips // 7)
        assert int(dataset.cardinality()) == batches, part  # known: Keras fit's epochs need it
        assert sum(int(video.shape[0]) for video, *_ in dataset) == clips, part


def test_validation_actors_are_seeded_whole_actors_of_every_class():
    # 12 actors; actor i shows only class i % 4, so a plain draw of 4 actors can miss classes.
    actors = np.repeat([f"A{i:02d}" for i in range(12)], 3)
    labels = np.repeat(np.arange(12) % 4, 3)
    for seed in range(20):
        held = validation_actors(actors, labels, share=1 / 3, seed=seed)
        assert len(held) == 4
        assert {int(labels[actors == actor][0]) for actor in held} == {0, 1, 2, 3}, seed
    assert validation_actors(actors, labels, 1 / 3, seed=1) == validation_actors(
        actors, labels, 1 / 3, seed=1
    )
    assert len({validation_actors(actors, labels, 1 / 3, seed=s) for s in range(5)}) > 1
    with pytest.raises(ValueError, match="keep one to train on"):
        validation_actors(["A", "A", "B"], [0, 1, 0], share=0.9)


def test_protocol_names_are_checked(forty_actors):
    with pytest.raises(ValueError, match="Unknown validation protocol 'kfold'"):
        fold_protocol(forty_actors, 0, "kfold")
