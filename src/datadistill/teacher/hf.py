"""A Hugging Face `transformers` teacher: fine-tune any sequence-classification checkpoint, then score.

Works with every `AutoModelForSequenceClassification` model (ERNIE, BERT, RoBERTa, XLM-R ...), for
single texts and pairs. `pooling="mean"` instead puts a linear head on the masked mean of the last
hidden states (the recipe of E5-style embedding models). The saved folder is a normal
`save_pretrained` checkpoint plus its tokenizer and `teacher.json` (labels, pooling, prefix,
max_len), so `HFTeacher(folder)` reproduces the scores with nothing else.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..batching import in_length_order, softmax
from ..checkpoint import remove_checkpoint, run_id
from ..config import ConfigError, check_ranges, to_dict
from ..data.cache import model_digest
from ..data.io import Example, give_default_mode
from ..data.labels import LabelMap
from ..log import logger
from ..train import LOOP_RANGES, check_device, fit, resolve_device
from .base import PRECISIONS, Teacher, TeacherError, TeacherScores, import_transformers, register_teacher

log = logger.getChild("teacher")
TEACHER_JSON = "teacher.json"
HEAD_FILE = "head.safetensors"
CHECKPOINT = ".finetune_checkpoint.pt"  # hidden: not one of the saved teacher's files


@dataclass
class TeacherTrainConfig:
    kind: str = "hf"  # the teacher kind (registry name): hf = transformers / bundled:NAME
    model: str = ""  # a local checkpoint folder or a hub name already in the local cache
    # Unset (None) values follow the device: the recipes measured in bench/RESULTS.md
    max_len: int = 256
    epochs: int | None = None  # None: 2 on a CPU (39 min on ChnSentiCorp's 9,600 reviews, 2 cores), 4 on a GPU
    batch_size: int = 32
    lr: float | None = None  # None: 6e-5 on a CPU (2 epochs), 5e-5 on a GPU (4 epochs)
    weight_decay: float = 0.01
    warmup: float = 0.1
    clip: float = 1.0
    patience: int = 3  # evaluations without dev improvement before stopping
    eval_every: int | None = None  # steps between dev evaluations; 0 = once per epoch; None: 150 on a CPU, 0 on a GPU
    seed: int = 1
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 autocast on a GPU that has it, else fp32), fp32, bf16, fp16
    pooling: str = "auto"  # cls: the model's own classification head; mean: masked mean + linear;
    # auto: mean for bundled teachers (their recipe), else cls
    prefix: str | None = None  # put before every text; None: "query: " for bundled E5, else nothing
    prune: bool = True  # bundled teachers: keep only the vocabulary pieces train/dev use
    allow_download: bool = False  # let transformers fetch a hub name missing from the local cache
    max_steps: int = 0  # 0 = no limit (for smoke tests)
    group_by_length: bool = True  # batches of similar length (shuffled): ~3x fewer padded tokens at max_len 256
    checkpoint: bool = True  # at each dev evaluation save the training state; a killed run resumes there

    RANGES = {**LOOP_RANGES, "max_len": (8, None)}

    def validate(self) -> None:
        if self.kind != "hf":
            raise ConfigError(f"kind must be 'hf' for a transformers teacher, got '{self.kind}'")
        if not self.model:
            raise ConfigError("model is required: a checkpoint folder, a cached hub name, or bundled:NAME")
        if self.pooling not in ("auto", "cls", "mean"):
            raise ConfigError(f"pooling must be 'auto', 'cls' or 'mean', got '{self.pooling}'")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got '{self.precision}'")
        check_ranges(self)
        check_device(self.device)


class MeanPoolClassifier(nn.Module):
    """Encoder -> masked mean of the last hidden states [B, H] -> dropout -> linear -> logits [B, C]."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state  # [B, L, H]
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, H]
        return self.head(self.dropout(pooled))


def _load_pretrained(name: str, num_labels: int, label_map: LabelMap, pooling: str, allow_download: bool = False):
    tf = import_transformers()
    local = {"local_files_only": not allow_download}
    try:
        tok = tf.AutoTokenizer.from_pretrained(name, **local)
        if pooling == "mean":
            model = MeanPoolClassifier(tf.AutoModel.from_pretrained(name, **local), num_labels)
        else:
            model = tf.AutoModelForSequenceClassification.from_pretrained(
                name,
                num_labels=num_labels,
                id2label=dict(enumerate(label_map.labels)),
                label2id={lab: i for i, lab in enumerate(label_map.labels)},
                ignore_mismatched_sizes=True,
                **local,
            )
    except (OSError, ValueError) as e:
        raise TeacherError(
            f"cannot load teacher model '{name}' offline ({str(e).splitlines()[0][:200]}). Pass a local folder "
            f"holding config.json, the weights and the tokenizer (e.g. an ERNIE/BERT checkpoint you downloaded "
            f"elsewhere), or the bundled pretrained teacher: --model bundled:multilingual-e5-small"
        ) from None
    return tok, model


def _logits(model: nn.Module, enc: dict) -> torch.Tensor:
    out = model(**enc)
    return out if isinstance(out, torch.Tensor) else out.logits


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo; False where that is missing): CPUs on which bf16
    matrix products run faster than fp32 ones rather than being emulated."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(device: torch.device, precision: str, inference: bool) -> str:
    """'auto' -> bf16 on a GPU that has it; for inference also on a CPU with native bf16 (teacher
    labelling ~2x faster on this project's EPYC, same hard labels, probabilities within ~0.02: see
    bench/bench_label_precision.py); else fp32. Fine-tuning on a CPU stays fp32 (bf16 there is unmeasured)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and inference and cpu_has_native_bf16() else "fp32"


def _autocast(device: torch.device, precision: str):
    precision = resolve_precision(device, precision, inference=False)
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class _Encoder:
    """Texts -> padded tensors with the model's tokenizer (dynamic padding, truncation to max_len)."""

    def __init__(self, tokenizer, max_len: int, prefix: str) -> None:
        self.tok, self.max_len, self.prefix = tokenizer, max_len, prefix

    def __call__(self, a: list[str], b: list[str] | None, device: torch.device) -> dict:
        a = [self.prefix + t for t in a]
        enc = self.tok(a, b, truncation=True, max_length=self.max_len, padding=True, return_tensors="pt")
        keep = ("input_ids", "attention_mask", "token_type_ids")
        return {k: v.to(device) for k, v in enc.items() if k in keep}


@torch.no_grad()
def _predict(
    model, encoder: _Encoder, a: list[str], b: list[str] | None, batch_size: int, device, precision
) -> np.ndarray:
    """Logits [N, C] in input order."""
    model.eval()

    def run(idx):
        with _autocast(device, precision):
            z = _logits(model, encoder([a[i] for i in idx], [b[i] for i in idx] if b else None, device))
        return z.float().cpu().numpy()

    return in_length_order([len(t) for t in a], batch_size, run)


def finetune(
    cfg: TeacherTrainConfig,
    train: list[Example],
    dev: list[Example],
    out_dir: str | Path,
    label_map: LabelMap,
    progress: bool = True,
) -> dict:
    """Fine-tune `cfg.model` on `train` with the one training loop, keep the best dev checkpoint, save it
    to `out_dir`. The teacher's side: its encoder, its loss (cross-entropy) and its dev accuracy."""
    import contextlib

    from ..distributed import world
    from ..lock import exclusive

    w = world()  # under torchrun: DDP, rank 0 writes the folder
    with exclusive(Path(out_dir), "teacher fine-tuning") if w.main else contextlib.nullcontext():
        return _finetune(cfg, train, dev, out_dir, label_map, progress and w.main)


def for_device(cfg: TeacherTrainConfig, device: torch.device) -> TeacherTrainConfig:
    """The settings left unset filled with the recipe measured for this kind of device."""
    import dataclasses

    gpu = device.type == "cuda"
    auto = {"epochs": 4 if gpu else 2, "lr": 5e-5 if gpu else 6e-5, "eval_every": 0 if gpu else 150}
    return dataclasses.replace(cfg, **{k: v for k, v in auto.items() if getattr(cfg, k) is None})


def _finetune(
    cfg: TeacherTrainConfig,
    train: list[Example],
    dev: list[Example],
    out_dir: str | Path,
    label_map: LabelMap,
    progress: bool,
) -> dict:
    from ..distributed import world
    from .bundled import BUNDLED, bundled_name, convert

    w = world()
    source = cfg.model
    bundled = bundled_name(cfg.model)
    if bundled:
        texts = [t for ex in train + dev for t in (ex.text_a, ex.text_b) if t] if cfg.prune else None
        if not w.main:  # rank 0 converts into the shared cache first; the others then find it there
            w.barrier()
        source = str(convert(bundled, texts))
        if w.main:
            w.barrier()
    pooling = cfg.pooling if cfg.pooling != "auto" else (BUNDLED[bundled]["pooling"] if bundled else "cls")
    prefix = cfg.prefix if cfg.prefix is not None else (BUNDLED[bundled]["prefix"] if bundled else "")
    torch.manual_seed(cfg.seed)  # the new head's initialisation is part of the seeded run
    device = resolve_device(w.device(cfg.device))
    cfg = for_device(cfg, device)
    tok, model = _load_pretrained(source, len(label_map), label_map, pooling, cfg.allow_download)
    limit = getattr(getattr(model, "config", None) or model.encoder.config, "max_position_embeddings", None)
    if limit and cfg.max_len > limit:
        raise ConfigError(f"teacher.max_len {cfg.max_len} is more than {source} reads ({limit} positions)")
    model.to(device)
    encoder = _Encoder(tok, cfg.max_len, prefix)
    pair = train[0].text_b is not None
    y = torch.tensor([label_map.id(ex.label) for ex in train])
    dev_a = [ex.text_a for ex in dev]
    dev_b = [ex.text_b or "" for ex in dev] if pair else None
    dev_y = np.array([label_map.id(ex.label) for ex in dev])

    def batch_loss(ids: np.ndarray, net: nn.Module):
        enc = encoder([train[i].text_a for i in ids], [train[i].text_b or "" for i in ids] if pair else None, device)
        with _autocast(device, cfg.precision):
            logits_T = _logits(net, enc)  # [B, C]
        labels = y[ids].to(device)
        loss = nn.functional.cross_entropy(logits_T.float(), labels)
        return loss, (logits_T.argmax(-1) == labels).float().mean().item()

    def evaluate() -> float:
        z = _predict(model, encoder, dev_a, dev_b, cfg.batch_size * 2, device, cfg.precision)
        return float((z.argmax(-1) == dev_y).mean())

    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "LayerNorm" in n or "layer_norm" in n]
    decay = [p for p in model.parameters() if all(p is not q for q in no_decay)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    checkpoint = Path(out_dir) / CHECKPOINT if cfg.checkpoint else None
    rid = (
        run_id(
            {k: v for k, v in to_dict(cfg).items() if k not in ("checkpoint", "device")},
            [(ex.label, ex.text_a, ex.text_b) for ex in train + dev],
        )
        if checkpoint
        else ""
    )
    lengths = np.array([len(ex.text_a) + len(ex.text_b or "") for ex in train])
    result = fit(
        model,
        batch_loss,
        evaluate,
        lengths,
        cfg,
        param_groups=groups,
        checkpoint=checkpoint,
        run_id=rid,
        what="teacher fine-tuning",
        progress=progress,
        unused_parameters=True,  # a checkpoint's pooler, unused by the mean-pooling head
    )
    if w.main:
        save_teacher(out_dir, model, tok, label_map, cfg, pooling, prefix)
        if checkpoint:
            remove_checkpoint(checkpoint)
    w.barrier()  # the folder is complete for every rank when this returns
    return {
        "dev_accuracy": result.best_dev_accuracy,
        "steps": result.steps,
        "seconds": result.seconds,
        "history": result.history,
        "pooling": pooling,
        "prefix": prefix,
    }


def save_teacher(
    out_dir: str | Path, model: nn.Module, tok, label_map: LabelMap, cfg: TeacherTrainConfig, pooling: str, prefix: str
) -> None:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, MeanPoolClassifier):
        model.encoder.save_pretrained(out)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}, str(out / HEAD_FILE))
    else:
        model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {
        "labels": label_map.labels,
        "pooling": pooling,
        "prefix": prefix,
        "max_len": cfg.max_len,
        "base_model": cfg.model,
    }
    (out / TEACHER_JSON).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    give_default_mode(out)  # safetensors writes 0600: a service account must read the teacher too


@register_teacher("hf")
class HFTeacher(Teacher):
    """A fine-tuned teacher folder written by `finetune`."""

    name = "hf"
    config_class = TeacherTrainConfig
    finetune = staticmethod(finetune)

    @classmethod
    def load(
        cls,
        cfg: TeacherTrainConfig,
        folder: Path,
        batch_size: int,
        precision: str,
        device: str = "auto",
        labels: list[str] | None = None,
    ) -> "HFTeacher":
        teacher = cls(folder, batch_size=batch_size, device=device, precision=precision)
        if labels is not None and teacher.label_names != labels:
            raise TeacherError(f"{folder}: the teacher's labels {teacher.label_names} are not the data's {labels}")
        return teacher

    def __init__(self, folder: str | Path, batch_size: int = 64, device: str = "auto", precision: str = "auto") -> None:
        from safetensors.torch import load_file

        tf = import_transformers()
        self.folder = Path(folder)
        meta_path = self.folder / TEACHER_JSON
        if not meta_path.is_file():
            raise TeacherError(f"{meta_path}: missing: not a folder written by 'datadistill teacher finetune'")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.label_names = meta["labels"]
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision, inference=True)
        tok = tf.AutoTokenizer.from_pretrained(self.folder)
        if meta["pooling"] == "mean":
            model = MeanPoolClassifier(tf.AutoModel.from_pretrained(self.folder), len(self.label_names))
            model.head.load_state_dict(load_file(str(self.folder / HEAD_FILE)))
        else:
            model = tf.AutoModelForSequenceClassification.from_pretrained(self.folder)
        self.model = model.to(self.device).eval()
        self.encoder = _Encoder(tok, meta["max_len"], meta.get("prefix", ""))
        self.unk_token = tok.unk_token or "[UNK]"
        self.batch_size = batch_size

    def describe(self) -> str:
        """The model files' bytes (not the folder's path or times: a copied teacher keeps its score cache)
        and the precision when it is not fp32, since bf16 scores differ in the third decimal."""
        return "hf:" + model_digest(self.folder) + ("" if self.precision == "fp32" else f":{self.precision}")

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def logits(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        return _predict(self.model, self.encoder, texts_a, texts_b, self.batch_size, self.device, self.precision)

    def score(self, texts_a: list[str], texts_b: list[str] | None = None) -> TeacherScores:
        z = self.logits(texts_a, texts_b)
        return TeacherScores(labels=[self.label_names[i] for i in z.argmax(-1)], probs=softmax(z), logits=z)
