"""`mtcnn.MTCNN` with its three networks traced and the batch converted to a tensor once."""

import numpy as np
import tensorflow as tf
from mtcnn import MTCNN
from mtcnn.utils.bboxes import fix_bboxes_offsets
from mtcnn.utils.bboxes import limit_bboxes
from mtcnn.utils.bboxes import to_json
from mtcnn.utils.images import load_images_batch
from mtcnn.utils.images import standarize_batch

IMAGES_SPEC = tf.TensorSpec((None, None, None, 3), tf.float32)


class TracedMTCNN(MTCNN):
    """MTCNN (`mtcnn==1.0.0`) with the same detections, 1.6-2x as fast on a clip.

    `mtcnn.MTCNN.detect_faces` calls PNet once per pyramid scale, then RNet and ONet, all as
    eager Keras models (every small convolution and PReLU dispatched from Python), and hands
    the stages the normalised batch as a NumPy array, which each of the ~10 resizes and crops
    converts to a tensor again. Here each network runs as one `tf.function` (one trace for
    every input size: the signature leaves batch, height and width open) and the batch is
    converted once. The arithmetic is unchanged: on the real CREMA-D clips the boxes,
    landmarks and confidences equal `mtcnn.MTCNN`'s bit for bit (`tests/test_mtcnn_labeler.py`;
    XLA was measured slower and not bit-identical, so it is not used). Speed:
    `bench/labelling.py`.

    `detect_faces` keeps `mtcnn.MTCNN.detect_faces`'s signature and outputs (its body, with
    the one conversion added; mtcnn is MIT-licensed, copyright Iván de Paz Centeno).

    Args:
        stages: str or list. As `mtcnn.MTCNN`: `"face_and_landmarks_detection"` (PNet, RNet,
            ONet) or `"face_detection_only"`, or stage classes / instances.
        device: str. The TensorFlow device the stages run on, e.g. `"CPU:0"`.
    """

    def __init__(self, stages="face_and_landmarks_detection", device="CPU:0"):
        super().__init__(stages=stages, device=device)
        for stage in self.stages:
            model = stage.model
            # The stages call `self._model(x)`; mtcnn is pinned (requirements.txt), and the
            # bit-for-bit test against the untraced MTCNN fails if this stops applying.
            stage._model = tf.function(
                lambda images, model=model: model(images, training=False),
                input_signature=[IMAGES_SPEC],
            )

    def detect_faces(self, image, fit_to_image=True, limit_boundaries_landmarks=False,
                     box_format="xywh", output_type="json", postprocess=True,
                     batch_stack_justification="center", **kwargs):  # fmt: skip
        """Faces in an image or a list of images; see `mtcnn.MTCNN.detect_faces`."""
        is_batch = isinstance(image, list)
        images = image if is_batch else [image]
        with tf.device(self.device):
            try:
                images_normalized, images_oshapes, pad_param = standarize_batch(
                    load_images_batch(images),
                    justification=batch_stack_justification,
                    normalize=True,
                )
                images_normalized = tf.convert_to_tensor(images_normalized)  # once, not per scale
                bboxes_batch = None
                for stage in self.stages:
                    bboxes_batch = stage(bboxes_batch=bboxes_batch,
                                         images_normalized=images_normalized,
                                         images_oshapes=images_oshapes, **kwargs)  # fmt: skip
            except tf.errors.InvalidArgumentError:  # no faces found (as mtcnn)
                bboxes_batch, pad_param = np.empty((0, 16)), None
            if postprocess and pad_param is not None:
                bboxes_batch = fix_bboxes_offsets(bboxes_batch, pad_param)
                if fit_to_image:
                    bboxes_batch = limit_bboxes(
                        bboxes_batch,
                        images_shapes=images_oshapes,
                        limit_landmarks=limit_boundaries_landmarks,
                    )
            if output_type == "numpy":
                if box_format == "xywh":
                    bboxes_batch[:, 3] = bboxes_batch[:, 3] - bboxes_batch[:, 1]
                    bboxes_batch[:, 4] = bboxes_batch[:, 4] - bboxes_batch[:, 2]
                return bboxes_batch
            result = to_json(bboxes_batch, images_count=len(images),
                             output_as_width_height=box_format == "xywh",
                             input_as_width_height=False)  # fmt: skip
        return result[0] if (not is_batch and len(result) > 0) else result
