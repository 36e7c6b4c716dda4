"""How a bag-of-n-grams student weights and normalises its bag, against the classical model, on gold labels.

The first BOW student averaged the embeddings of a text's characters and hashed character 2/3-grams
(a mean: every position weighs 1 / length). The classical model weighs each n-gram by TF-IDF and
normalises the vector to unit length (L2), and sees every distinct n-gram (no hashing). This trains
a bag (AdamW, best dev epoch) with each weighting on ChnSentiCorp's 9,600 gold labels over several
seeds, beside scikit-learn's TF-IDF + linear SVM on exact and on hashed n-grams:

    python bench/bench_bow_weighting.py --variants mean,idf_l1,idf_l2pos --tag embedding   # 64-wide bag
    python bench/bench_bow_weighting.py --variants l2pos,idf_l2pos --emb 0 --buckets 1000000 \
        --dropout 0 --init-std 0 --wd 0 --epochs 10 --tag linear                           # linear bag

Variants: mean (the first student), idf_l1 (IDF-weighted mean), idf_l2 (IDF weights over the L2
norm over distinct n-grams, as TfidfVectorizer without sublinear tf), idf_l2_lr (the same at lr
1e-3), l2pos (unit L2 norm over positions: an n-gram seen k times weighs k / sqrt(sum)), idf_l2pos
(IDF weights over their L2 norm over positions: what the BOW student's "tfidf" weighting does).
--emb 0 makes the bag linear (one weight per label). Writes bench/out/bow_weighting[_TAG].json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datadistill.data.io import read_splits
from datadistill.text.features import hash_ngrams
from datadistill.text.vocab import Vocab

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "mean": {"norm": "mean", "idf": False, "lr": 0.005},
    "idf_l1": {"norm": "l1", "idf": True, "lr": 0.005},
    "idf_l2": {"norm": "l2", "idf": True, "lr": 0.005},
    "idf_l2_lr": {"norm": "l2", "idf": True, "lr": 0.001},
    "l2pos": {"norm": "l2pos", "idf": False, "lr": 0.005},
    "idf_l2pos": {"norm": "l2pos", "idf": True, "lr": 0.005},
}


def features(texts, vocab, buckets=100_000, orders=(2, 3), max_len=512):
    """Per text: char ids and hashed n-gram ids (offset by the vocabulary size) in one id space."""
    out = []
    for t in texts:
        ids = np.asarray(vocab.encode(list(t)[:max_len]) or [1], dtype=np.int64)
        ng = hash_ngrams(ids[None], np.array([len(ids)]), list(orders), buckets)[0]
        out.append(np.concatenate([ids, ng[ng != 0] + len(vocab)]))
    return out


def weights_of(f: np.ndarray, idf: np.ndarray | None, norm: str) -> np.ndarray:
    w = idf[f] if idf is not None else np.ones(len(f))
    if norm == "mean":
        return w / len(f)
    if norm == "l1":
        return w / w.sum()
    if norm == "l2pos":  # l2 over positions: a repeated n-gram counts sqrt(tf) times (no per-text dedup needed)
        return w / np.sqrt((w**2).sum())
    u, inv = np.unique(f, return_inverse=True)  # l2 over distinct features: tf x idf per feature
    tot = np.zeros(len(u))
    np.add.at(tot, inv, w)
    return w / np.sqrt((tot**2).sum())


def train_bag(
    F_tr,
    y_tr,
    F_dv,
    y_dv,
    F_te,
    y_te,
    n_ids,
    norm,
    use_idf,
    lr,
    seed,
    epochs=8,
    emb=64,
    drop=0.2,
    opt_name="adamw",
    wd=0.01,
    init_std=0.1,
    l2=0.0,
):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    idf = None
    if use_idf:
        df = np.zeros(n_ids)
        for f in F_tr:
            df[np.unique(f)] += 1
        idf = np.log((1 + len(F_tr)) / (1 + df)) + 1  # scikit-learn's smoothed idf

    def pack(Fs):
        return [(torch.from_numpy(f), torch.from_numpy(weights_of(f, idf, norm)).float()) for f in Fs]

    P_tr, P_dv, P_te = pack(F_tr), pack(F_dv), pack(F_te)
    n_labels = int(max(y_tr)) + 1
    bag = nn.EmbeddingBag(n_ids, emb or n_labels, mode="sum")  # emb 0: a linear model (the bag gives logits)
    nn.init.normal_(bag.weight, 0, init_std)
    head, dp = (nn.Linear(emb, n_labels) if emb else nn.Identity()), nn.Dropout(drop)
    params = list(bag.parameters()) + list(head.parameters())
    if opt_name == "sgd":  # fastText's optimiser: plain SGD, the rate falling linearly to 0
        opt = torch.optim.SGD(params, lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    total = epochs * ((len(F_tr) + 63) // 64)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total if opt_name == "sgd" else 1.0)

    def forward(P):
        ids, w = torch.cat([p[0] for p in P]), torch.cat([p[1] for p in P])
        off = torch.tensor([0] + [len(p[0]) for p in P[:-1]]).cumsum(0)
        return head(dp(bag(ids, off, per_sample_weights=w)))

    def acc(P, y):
        dp.eval()
        with torch.no_grad():
            z = torch.cat([forward(P[i : i + 512]) for i in range(0, len(P), 512)])
        dp.train()
        return float((z.argmax(-1).numpy() == y).mean()) * 100

    y_t = torch.tensor(y_tr)
    best = (-1.0, 0.0)
    for _ in range(epochs):
        perm = rng.permutation(len(P_tr))
        for s in range(0, len(perm), 64):
            b = perm[s : s + 64]
            loss = F.cross_entropy(forward([P_tr[i] for i in b]), y_t[b])
            if l2:
                loss = loss + l2 * (bag.weight**2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        d = acc(P_dv, y_dv)
        if d > best[0]:
            best = (d, acc(P_te, y_te))
    return best


def classical(tr, dv, te, y, y_dv, y_te, hashed: bool):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    if hashed:
        hv = HashingVectorizer(analyzer="char", ngram_range=(1, 3), n_features=100_000, alternate_sign=False, norm=None)
        vec = make_pipeline(hv, TfidfTransformer(sublinear_tf=True))
    else:
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    svm = LinearSVC().fit(vec.fit_transform(tr), y)
    return (
        float((svm.predict(vec.transform(dv)) == y_dv).mean()) * 100,
        float((svm.predict(vec.transform(te)) == y_te).mean()) * 100,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--opt", default="adamw", choices=["adamw", "sgd"])
    ap.add_argument("--lr", type=float, help="overrides the variant's learning rate")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--emb", type=int, default=64)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--init-std", type=float, default=0.1)
    ap.add_argument("--buckets", type=int, default=100_000)
    ap.add_argument("--tag", default="", help="names the output: bench/out/bow_weighting[_TAG].json")
    ap.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the bag, added to the loss")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tr, dv, te, lm = read_splits("chnsenticorp:train", "chnsenticorp:dev", "chnsenticorp:test")
    texts = [[e.text_a for e in rows] for rows in (tr, dv, te)]
    ys = [np.array([lm.id(e.label) for e in rows]) for rows in (tr, dv, te)]
    vocab = Vocab.build([list(t) for part in texts for t in part])
    feats = [features(part, vocab, buckets=args.buckets) for part in texts]
    n_ids = len(vocab) + args.buckets
    table = {}
    for hashed in (False, True):
        name = "classical (TF-IDF + SVM, hashed 100k)" if hashed else "classical (TF-IDF + SVM)"
        d, t = classical(*texts, *ys, hashed=hashed)
        table[name] = {"dev": [d], "test": [t]}
        print(f"{name:<40} dev {d:.2f} test {t:.2f}", flush=True)
    for v in args.variants.split(","):
        spec = VARIANTS[v]
        table[v] = {"dev": [], "test": []}
        for seed in [int(s) for s in args.seeds.split(",")]:
            t0 = time.perf_counter()
            d, t = train_bag(
                feats[0],
                ys[0],
                feats[1],
                ys[1],
                feats[2],
                ys[2],
                n_ids,
                spec["norm"],
                spec["idf"],
                args.lr or spec["lr"],
                seed,
                args.epochs,
                args.emb,
                args.dropout,
                args.opt,
                args.wd,
                args.init_std,
                args.l2,
            )
            table[v]["dev"].append(d)
            table[v]["test"].append(t)
            print(f"{v:<40} seed {seed}: dev {d:.2f} test {t:.2f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    print(f"\n{'variant':<40} {'n':>2} {'dev mean ± sd':>15} {'test mean ± sd':>15}")
    for v, r in table.items():
        sd = lambda xs: statistics.pstdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        print(
            f"{v:<40} {len(r['test']):>2} {statistics.mean(r['dev']):9.2f} ± {sd(r['dev']):4.2f} "
            f"{statistics.mean(r['test']):9.2f} ± {sd(r['test']):4.2f}"
        )
    out = HERE / "out" / f"bow_weighting{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
