"""Writes tfds_builders/crema_d/dummy_data: generated clips in CREMA-D's naming and layout.

    python tools/make_crema_d_dummy_data.py

No CREMA-D clip is copied: each file is a synthetic_faces clip written as FLV, named
`<actor>_<sentence>_<emotion>_<level>.flv` under `VideoFlash/`, with one or two actors from
each of the five fold blocks, plus one file whose name does not parse (reported, skipped).
"""

import os
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer  # noqa: E402

CLIPS = [
    ("1001_DFA_ANG_XX", "ANG"), ("1001_IEO_HAP_HI", "HAP"), ("1019_ITS_DIS_XX", "DIS"),
    ("1037_TIE_FEA_LO", "FEA"), ("1055_WSI_NEU_XX", "NEU"), ("1073_MTI_SAD_MD", "SAD"),
]  # fmt: skip


def main():
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "tfds_builders", "crema_d", "dummy_data", "VideoFlash")  # fmt: skip
    os.makedirs(folder, exist_ok=True)
    renderer = SyntheticFaceRenderer(image_size=96, num_frames=20, seed=11)
    for index, (name, emotion) in enumerate(CLIPS):
        video = renderer.render(index, emotion, 0)["video"]
        path = os.path.join(folder, name + ".flv")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"FLV1"), 30.0, (96, 96))
        for frame in video:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    with open(os.path.join(folder, "1001_DFA_XYZ_XX.flv"), "wb") as file:
        file.write(b"an unknown emotion code: skipped and reported")
    print(f"wrote {len(CLIPS) + 1} files to {folder}")


if __name__ == "__main__":
    main()
