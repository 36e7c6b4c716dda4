# Gold-only linear bag with and without train.nb_scale on ChnSentiCorp and the 10-category split
# (made first by: datadistill split ../shared/data/online_shopping_10_cats/reviews.tsv --out work/data/shop10
#  --dev 2000 --test 2000 --train 4000 --stratify category --seed 1); bench/RESULTS.md, "Naive-Bayes scaling".
set -e
cd "$(dirname "$0")/.."
S='student.arch=bow'
F='student.features={"tokenizer":"char","max_len":512,"ngrams":[2,3],"ngram_buckets":1000000,"ngram_hash":"mix"}'
M='student.model={"emb_dim":0,"hidden":0,"weighting":"tfidf"}'
for nb in true false; do
  out=work/gold_nb/cs_nb_$nb
  [ -f $out/metrics.json ] || nice -n 5 datadistill student train -q --set data.train=chnsenticorp:train --set data.dev=chnsenticorp:dev --set "$S" --set "$F" --set "$M" --set train.nb_scale=$nb --set output=$out
  echo "== $out"; datadistill eval -q --model $out --data chnsenticorp:test --json bench/out/gold_cs_nb_$nb.test.json | grep -i accuracy
  out=work/gold_nb/shop10_nb_$nb
  [ -f $out/metrics.json ] || nice -n 5 datadistill student train -q --set data.train=work/data/shop10/train.tsv --set data.dev=work/data/shop10/dev.tsv --set data.label_column=category --set "$S" --set "$F" --set "$M" --set train.nb_scale=$nb --set output=$out
  echo "== $out"; datadistill eval -q --model $out --data work/data/shop10/test.tsv --label-column category --json bench/out/gold_shop10_nb_$nb.test.json | grep -i accuracy
done
