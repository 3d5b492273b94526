"""Key names of VideoMAE checkpoints, mapped to one canonical (original VideoMAE) naming.

Accepted spellings of the same weight:
- original (MCG-NJU / MAE-DFER ViT): `patch_embed.proj.weight`, `blocks.3.attn.qkv.weight`,
  `blocks.3.attn.q_bias`, ..., optionally behind `encoder.` (pre-training checkpoints);
- Hugging Face: `embeddings.patch_embeddings.projection.weight`,
  `encoder.layer.3.attention.attention.{query,key,value}.weight`, `q_bias` / `query.bias`, ...,
  optionally behind `videomae.` (task models).
Leading `module.` (DistributedDataParallel) is removed too.
"""

import re

# Keys that belong to a checkpoint's pre-training decoder or classification head.
IGNORED_PATTERNS = (
    r"decoder\..*",
    r"encoder_to_decoder\..*",
    r"mask_token",
    r"head\..*",
    r"fc_norm\..*",
    r"classifier\..*",
)

_BLOCK = r"(?:encoder\.)?blocks\.(\d+)\."
_LAYER = r"encoder\.layer\.(\d+)\."
_HF_ATTN = _LAYER + r"attention\.attention\."

# (pattern, canonical template); `{0}` is the block index. A `#q`/`#k`/`#v` suffix marks one
# third of the fused qkv weight; `#k_bias` the Hugging Face key bias, which must be zero.
_RULES = [
    (r"(?:encoder\.)?patch_embed\.proj\.(weight|bias)", "patch_embed.proj.{1}"),
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", "patch_embed.proj.{1}"),
    (_BLOCK + r"norm1\.(weight|bias)", "blocks.{0}.norm1.{1}"),
    (_BLOCK + r"norm2\.(weight|bias)", "blocks.{0}.norm2.{1}"),
    (_BLOCK + r"attn\.qkv\.weight", "blocks.{0}.attn.qkv.weight"),
    (_BLOCK + r"attn\.(q_bias|v_bias)", "blocks.{0}.attn.{1}"),
    (_BLOCK + r"attn\.proj\.(weight|bias)", "blocks.{0}.attn.proj.{1}"),
    (_BLOCK + r"mlp\.(fc1|fc2)\.(weight|bias)", "blocks.{0}.mlp.{1}.{2}"),
    (_BLOCK + r"(gamma_1|gamma_2)", "blocks.{0}.{1}"),
    (r"(?:encoder\.)?norm\.(weight|bias)", "norm.{1}"),
    (_LAYER + r"layernorm_before\.(weight|bias)", "blocks.{0}.norm1.{1}"),
    (_LAYER + r"layernorm_after\.(weight|bias)", "blocks.{0}.norm2.{1}"),
    (_HF_ATTN + r"query\.weight", "blocks.{0}.attn.qkv.weight#q"),
    (_HF_ATTN + r"key\.weight", "blocks.{0}.attn.qkv.weight#k"),
    (_HF_ATTN + r"value\.weight", "blocks.{0}.attn.qkv.weight#v"),
    (_HF_ATTN + r"(?:q_bias|query\.bias)", "blocks.{0}.attn.q_bias"),
    (_HF_ATTN + r"(?:v_bias|value\.bias)", "blocks.{0}.attn.v_bias"),
    (_HF_ATTN + r"key\.bias", "blocks.{0}.attn.qkv.weight#k_bias"),
    (_LAYER + r"attention\.output\.dense\.(weight|bias)", "blocks.{0}.attn.proj.{1}"),
    (_LAYER + r"intermediate\.dense\.(weight|bias)", "blocks.{0}.mlp.fc1.{1}"),
    (_LAYER + r"output\.dense\.(weight|bias)", "blocks.{0}.mlp.fc2.{1}"),
    (r"layernorm\.(weight|bias)", "norm.{1}"),
]
_COMPILED = [(re.compile(pattern + r"$"), template) for pattern, template in _RULES]
_IGNORED = [re.compile(pattern + r"$") for pattern in IGNORED_PATTERNS]


def strip_prefixes(key):
    """Removes `module.` and `videomae.` wrappers (not `encoder.`, which the rules handle)."""
    for prefix in ("module.", "videomae."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def canonical_key(key):
    """Canonical name of an encoder key, `"ignored"` for decoder/head keys, or None if unknown.

    Args:
        key: str. A state-dict key in any accepted spelling.
    """
    stripped = strip_prefixes(key)
    for pattern, template in _COMPILED:
        match = pattern.match(stripped)
        if match:
            groups = match.groups()
            if template.startswith("blocks."):
                return template.format(int(groups[0]), *groups[1:])
            return template.format(None, *groups)
    if any(pattern.match(stripped) for pattern in _IGNORED):
        return "ignored"
    return None


def shape_config(names):
    """The encoder sizes that a checkpoint's shapes give, from its canonical names.

    Both VideoMAE and LGI-Former checkpoints name their tubelet embedding
    `patch_embed.proj.weight` `[width, channels, tubelet, patch, patch]`, their blocks
    `blocks.i.*` and their first MLP `blocks.0.mlp.fc1.weight` `[mlp width, width]`.

    Args:
        names: dict canonical name -> array; must hold `patch_embed.proj.weight`.

    Returns:
        dict `patch_size`, `tubelet_size`, `hidden_dim`, `num_layers`, `intermediate_dim`,
        `num_channels`.
    """
    hidden, channels, tubelet, patch, _ = names["patch_embed.proj.weight"].shape
    blocks = {int(m.group(1)) for n in names if (m := re.match(r"blocks\.(\d+)\.", n))}
    fc1 = names.get("blocks.0.mlp.fc1.weight")
    return {
        "patch_size": int(patch),
        "tubelet_size": int(tubelet),
        "hidden_dim": int(hidden),
        "num_layers": len(blocks),
        "intermediate_dim": int(fc1.shape[0]) if fc1 is not None else 4 * int(hidden),
        "num_channels": int(channels),
    }
