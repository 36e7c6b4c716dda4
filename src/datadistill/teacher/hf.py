"""A Hugging Face `transformers` teacher: fine-tune any sequence-classification checkpoint, then score.

Works with every `AutoModelForSequenceClassification` model (ERNIE, BERT, RoBERTa, XLM-R ...), for
single texts and pairs. `pooling="mean"` instead puts a linear head on the masked mean of the last
hidden states (the recipe of E5-style embedding models). The saved folder is a normal
`save_pretrained` checkpoint plus its tokenizer and `teacher.json` (labels, pooling, prefix,
max_len), so `HFTeacher(folder)` reproduces the scores with nothing else.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, to_dict
from ..batching import length_batches
from ..checkpoint import TrainingCheckpoint
from ..data.io import Example, model_digest
from ..data.labels import LabelMap
from ..train import optimizer_step, warmup_schedule
from .base import Teacher, TeacherError, TeacherScores, register_teacher

TEACHER_JSON = "teacher.json"
HEAD_FILE = "head.safetensors"
CHECKPOINT = ".finetune_checkpoint.pt"   # hidden: not one of the saved teacher's files


def _transformers():
    try:
        import transformers
    except ImportError:  # pragma: no cover - depends on the install
        raise TeacherError("the transformers teacher needs the 'transformers' package: "
                           "pip install 'datadistill[teacher]'") from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: see resolve_precision


@dataclass
class TeacherTrainConfig:
    model: str = ""                 # a local checkpoint folder or a hub name already in the local cache
    max_len: int = 128
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    clip: float = 1.0
    patience: int = 2               # evaluations without dev improvement before stopping
    eval_every: int = 0             # steps between dev evaluations; 0 = once per epoch
    seed: int = 1
    device: str = "auto"
    precision: str = "auto"         # auto (bf16 autocast on a GPU that has it, else fp32), fp32, bf16, fp16
    pooling: str = "auto"           # cls: the model's own classification head; mean: masked mean + linear;
                                    # auto: mean for bundled teachers (their recipe), else cls
    prefix: str | None = None       # put before every text; None: "query: " for bundled E5, else nothing
    prune: bool = True              # bundled teachers: keep only the vocabulary pieces train/dev use
    allow_download: bool = False    # let transformers fetch a hub name missing from the local cache
    max_steps: int = 0              # 0 = no limit (for smoke tests)
    group_by_length: bool = True    # batches of similar length (shuffled): ~3x fewer padded tokens at max_len 256
    checkpoint: bool = True         # at each dev evaluation save the training state; a killed run resumes there

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("model is required: a checkpoint folder, a cached hub name, or bundled:NAME")
        if self.pooling not in ("auto", "cls", "mean"):
            raise ConfigError(f"pooling must be 'auto', 'cls' or 'mean', got '{self.pooling}'")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got '{self.precision}'")


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
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)                                            # [B, H]
        return self.head(self.dropout(pooled))


def _load_pretrained(name: str, num_labels: int, label_map: LabelMap, pooling: str, allow_download: bool = False):
    tf = _transformers()
    local = {"local_files_only": not allow_download}
    try:
        tok = tf.AutoTokenizer.from_pretrained(name, **local)
        if pooling == "mean":
            model = MeanPoolClassifier(tf.AutoModel.from_pretrained(name, **local), num_labels)
        else:
            model = tf.AutoModelForSequenceClassification.from_pretrained(
                name, num_labels=num_labels, id2label=dict(enumerate(label_map.labels)),
                label2id={lab: i for i, lab in enumerate(label_map.labels)}, ignore_mismatched_sizes=True, **local)
    except (OSError, ValueError) as e:
        raise TeacherError(
            f"cannot load teacher model '{name}' offline ({str(e).splitlines()[0][:200]}). Pass a local folder "
            f"holding config.json, the weights and the tokenizer (e.g. an ERNIE/BERT checkpoint you downloaded "
            f"elsewhere), or the bundled pretrained teacher: --model bundled:multilingual-e5-small") from None
    return tok, model


def _logits(model: nn.Module, enc: dict) -> torch.Tensor:
    out = model(**enc)
    return out if isinstance(out, torch.Tensor) else out.logits


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


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
def _predict(model, encoder: _Encoder, a: list[str], b: list[str] | None, batch_size: int, device, precision) -> np.ndarray:
    model.eval()
    out = np.zeros((len(a), 0), dtype=np.float32)
    chunks = []
    for idx in length_batches([len(t) for t in a], batch_size):
        with _autocast(device, precision):
            z = _logits(model, encoder([a[i] for i in idx], [b[i] for i in idx] if b else None, device))
        chunks.append((idx, z.float().cpu().numpy()))
    if chunks:
        out = np.zeros((len(a), chunks[0][1].shape[1]), dtype=np.float32)
        for idx, z in chunks:
            out[idx] = z
    return out


def finetune(cfg: TeacherTrainConfig, train: list[Example], dev: list[Example], out_dir: str | Path,
             label_map: LabelMap, progress: bool = True, log=None) -> dict:
    """Fine-tune `cfg.model` on `train`, keep the best dev checkpoint, save it to `out_dir`."""
    from tqdm import tqdm

    from .bundled import BUNDLED, bundled_name, convert

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = copy.copy(cfg)
    source = cfg.model
    bundled = bundled_name(cfg.model)
    if bundled:
        texts = [t for ex in train + dev for t in (ex.text_a, ex.text_b) if t] if cfg.prune else None
        source = str(convert(bundled, texts, log=log))
    if cfg.pooling == "auto":
        cfg.pooling = BUNDLED[bundled]["pooling"] if bundled else "cls"
    if cfg.prefix is None:
        cfg.prefix = BUNDLED[bundled]["prefix"] if bundled else ""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = _device(cfg.device)
    tok, model = _load_pretrained(source, len(label_map), label_map, cfg.pooling, cfg.allow_download)
    model.to(device)
    encoder = _Encoder(tok, cfg.max_len, cfg.prefix)
    pair = train[0].text_b is not None
    y = np.array([label_map.id(ex.label) for ex in train])
    train_len = np.array([len(ex.text_a) + len(ex.text_b or "") for ex in train])
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "LayerNorm" in n or "layer_norm" in n]
    decay = [p for p in model.parameters() if all(p is not q for q in no_decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_schedule(total, cfg.warmup))
    dev_a = [ex.text_a for ex in dev]
    dev_b = [ex.text_b or "" for ex in dev] if pair else None
    dev_y = np.array([label_map.id(ex.label) for ex in dev])
    eval_every = cfg.eval_every or steps_per_epoch
    ckpt = TrainingCheckpoint(Path(out_dir) / CHECKPOINT, _run_id(cfg, train, dev), log,
                              "fine-tuning") if cfg.checkpoint else None
    # st: where training is; a checkpoint restores it with the weights, optimizer, schedule and RNGs
    st = {"step": 0, "epoch": 0, "done_in_epoch": 0, "best_acc": -1.0, "bad": 0, "history": [], "seconds": 0.0}
    best_state = None
    if ckpt and (resumed := ckpt.load(model, opt, sched, rng, device)):
        st, best_state = resumed
        log(f"resuming fine-tuning at step {st['step']} of {total} from {ckpt.path}")
    history, step = st["history"], st["step"]
    t0 = time.perf_counter() - st["seconds"]
    bar = tqdm(total=total, initial=step, desc="fine-tuning", unit="step", disable=not progress, file=sys.stderr)
    stop = step >= total
    for epoch in range(st["epoch"], cfg.epochs):
        if stop:
            break
        model.train()
        epoch_rng = json.dumps(rng.bit_generator.state)  # the epoch's batches are re-drawn from this on resume
        if cfg.group_by_length:
            batches = length_batches(train_len, cfg.batch_size, rng)
        else:
            perm = rng.permutation(len(train))
            batches = [perm[s: s + cfg.batch_size] for s in range(0, len(perm), cfg.batch_size)]
        skip = st["done_in_epoch"] if epoch == st["epoch"] else 0
        for bi, idx in enumerate(batches):
            if bi < skip:
                continue
            enc = encoder([train[i].text_a for i in idx], [train[i].text_b or "" for i in idx] if pair else None, device)
            with _autocast(device, cfg.precision):
                logits = _logits(model, enc)
            loss = nn.functional.cross_entropy(logits.float(), torch.as_tensor(y[idx], device=device))
            optimizer_step(loss, model, opt, sched, cfg.clip)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % eval_every == 0 or step == total:
                z = _predict(model, encoder, dev_a, dev_b, cfg.batch_size * 2, device, cfg.precision)
                acc = float((z.argmax(-1) == dev_y).mean())
                history.append({"step": step, "epoch": epoch + 1, "loss": loss.item(), "dev_accuracy": acc})
                log(f"step {step} epoch {epoch + 1}: loss {loss.item():.4f} dev accuracy {acc * 100:.2f}"
                    + (" (best)" if acc > st["best_acc"] else ""))
                if acc > st["best_acc"]:
                    st["best_acc"], st["bad"] = acc, 0
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                else:
                    st["bad"] += 1
                    stop = st["bad"] >= cfg.patience
                model.train()
                if ckpt and not stop and step < total:
                    st.update(step=step, epoch=epoch, done_in_epoch=bi + 1, seconds=time.perf_counter() - t0)
                    ckpt.save(model, opt, sched, epoch_rng, st, best_state, device)
            if stop or step >= total:
                stop = True
                break
    bar.close()
    model.load_state_dict(best_state)
    seconds = time.perf_counter() - t0
    save_teacher(out_dir, model, tok, label_map, cfg)
    if ckpt:
        ckpt.remove()
    return {"dev_accuracy": st["best_acc"], "steps": step, "seconds": seconds, "history": history,
            "pooling": cfg.pooling, "prefix": cfg.prefix}


def _run_id(cfg: TeacherTrainConfig, train: list[Example], dev: list[Example]) -> str:
    """What a checkpoint must match to be resumed: the settings and the data, byte for byte.
    (Its own format rather than `checkpoint.run_id`, so checkpoints written before that existed resume.)"""
    h = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode())
    for ex in train + dev:
        h.update(f"{ex.label}\t{ex.text_a}\t{ex.text_b}\n".encode())
    return h.hexdigest()[:16]


def save_teacher(out_dir: str | Path, model: nn.Module, tok, label_map: LabelMap, cfg: TeacherTrainConfig) -> None:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, MeanPoolClassifier):
        model.encoder.save_pretrained(out)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}, str(out / HEAD_FILE))
    else:
        model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {"labels": label_map.labels, "pooling": cfg.pooling, "prefix": cfg.prefix, "max_len": cfg.max_len,
            "base_model": cfg.model}
    (out / TEACHER_JSON).write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@register_teacher("hf")
class HFTeacher(Teacher):
    """A fine-tuned teacher folder written by `finetune`."""

    name = "hf"

    def __init__(self, folder: str | Path, batch_size: int = 64, device: str = "auto", precision: str = "auto") -> None:
        from safetensors.torch import load_file

        tf = _transformers()
        self.folder = Path(folder)
        meta_path = self.folder / TEACHER_JSON
        if not meta_path.is_file():
            raise TeacherError(f"{meta_path}: missing: not a folder written by 'datadistill teacher finetune'")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.label_names = meta["labels"]
        self.device = _device(device)
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

    def logits(self, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
        return _predict(self.model, self.encoder, texts_a, texts_b, self.batch_size, self.device, self.precision)

    def score(self, texts_a: list[str], texts_b: list[str] | None = None) -> TeacherScores:
        z = self.logits(texts_a, texts_b)
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return TeacherScores(labels=[self.label_names[i] for i in z.argmax(-1)], probs=p, logits=z)
