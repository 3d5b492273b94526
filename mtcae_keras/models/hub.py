"""`hf://OWNER/REPO[@REVISION]` encoder names: a Hugging Face Hub repository, downloaded once.

The official VideoMAE repositories (github MCG-NJU/VideoMAE, as `transformers` converted them)
include `MCG-NJU/videomae-base`, `-base-short`, `-large` (self-supervised pre-training on
Kinetics-400, decoder included), `MCG-NJU/videomae-base-finetuned-kinetics`,
`-large-finetuned-kinetics`, `-huge-finetuned-kinetics` (fine-tuned on Kinetics-400) and
`MCG-NJU/videomae-base-ssv2`, `-base-finetuned-ssv2` (Something-Something V2).
"""

import os

HF_PREFIX = "hf://"
# What a repository may hold that an encoder is read from; nothing else is downloaded.
# (`preprocessor.json` and `metadata.json`: an `MTCAEDFER` preset.)
_WEIGHT_PATTERNS = ("config.json", "*.safetensors", "*.safetensors.index.json", "*.bin",
                    "*.bin.index.json", "*.pth", "*.weights.h5", "*.config.json",
                    "preprocessor.json", "metadata.json")  # fmt: skip


def is_hub_name(name):
    return isinstance(name, str) and name.startswith(HF_PREFIX)


def resolve_hub_name(name):
    """The local path an encoder name stands for: unchanged unless it is `hf://...`.

    An `hf://OWNER/REPO[@REVISION]` repository is fetched with `huggingface_hub` (only its
    config and weight files; from the local cache when it is there, and only from there
    with `HF_HUB_OFFLINE=1`). A repository in Hugging Face's layout (`config.json` beside
    its weights) gives its folder, which the VideoMAE converter reads; else the one
    converted `.weights.h5` or original `.pth` it holds.

    Args:
        name: str. An encoder name: a preset, a path, or `hf://OWNER/REPO[@REVISION]`.

    Raises:
        ValueError: the repository cannot be fetched, or holds no single encoder.
    """
    if not is_hub_name(name):
        return name
    repo_id, _, revision = name[len(HF_PREFIX) :].partition("@")
    if repo_id.count("/") != 1:
        raise ValueError(f"{name}: a hub name is hf://OWNER/REPO[@REVISION].")
    import huggingface_hub

    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision or None, allow_patterns=list(_WEIGHT_PATTERNS)
        )
    except Exception as error:  # offline without a cached copy, unknown repo, no network
        raise ValueError(f"Cannot fetch {name}: {type(error).__name__}: {error}") from error
    files = sorted(os.listdir(folder))
    if "config.json" in files:
        return folder
    for suffix in (".weights.h5", ".pth"):
        found = [f for f in files if f.endswith(suffix)]
        if len(found) == 1:
            return os.path.join(folder, found[0])
    raise ValueError(
        f"{name}: no encoder found (a Hugging Face config.json with its weights, or one"
        f" .weights.h5 or .pth); the repository holds {files}."
    )
