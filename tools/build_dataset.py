"""Builds one of our TFDS datasets: `tfds build` without its Apache Beam dependency.

    python tools/build_dataset.py ravdess --manual_dir ~/data/RAVDESS [--config mae_dfer]
        [--data_dir ~/tensorflow_datasets]

Same result as `tfds build tfds_builders/<name> --manual_dir DIR`, whose command line in TFDS
4.9.10 imports `apache_beam` at start-up (for its format converter) even though none of our
builders uses Beam. The data report is printed at the end.
"""

import argparse
import importlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = ("ravdess", "crema_d", "mead", "synthetic_faces", "video_folder")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--manual_dir", help="the downloaded files (not for synthetic_faces)")
    parser.add_argument("--config", help="builder config (the builder's default if unset)")
    parser.add_argument("--data_dir", help="TFDS data dir (default: TFDS's)")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import tensorflow_datasets as tfds

    module = importlib.import_module(f"tfds_builders.{args.dataset}.{args.dataset}_dataset_builder")
    kwargs = {"config": args.config} if args.config else {}
    builder = module.Builder(data_dir=args.data_dir, **kwargs)
    config = tfds.download.DownloadConfig(manual_dir=args.manual_dir)
    builder.download_and_prepare(download_config=config)
    print(f"built {builder.name}/{builder.builder_config.name if builder.builder_config else ''}"
          f" {builder.version} in {builder.data_dir}")  # fmt: skip
    for split, info in sorted(builder.info.splits.items()):
        print(f"  {split}: {info.num_examples} examples")
    if hasattr(builder, "_report_path") and os.path.exists(builder._report_path()):
        with open(builder._report_path()) as file:
            report = json.load(file)
        print(f"data report: {builder._report_path()}")
        print(json.dumps(report, indent=1, sort_keys=True)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
