#!/bin/bash
#SBATCH --job-name=wordcount --time=5
# Writes its own input, counts words, keeps the result next to the output.
for i in $(seq 1 2000); do echo "the quick brown fox jumps over the lazy dog $i"; done > input.txt
tr -s ' ' '\n' < input.txt | sort | uniq -c | sort -rn | head -5 | tee top-words.txt
echo "$(wc -l < input.txt) lines counted"
