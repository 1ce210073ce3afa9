#!/bin/bash
#SBATCH -J pi -c 2 -t 10
# Leibniz series for pi, two independent halves in parallel (one per core)
half() { awk -v from="$1" -v to="$2" 'BEGIN { s = 0; for (k = from; k < to; k++) s += (k % 2 ? -4 : 4) / (2 * k + 1); printf "%.15f\n", s }'; }
N=3000000
half 0 $((N / 2)) > part1 & half $((N / 2)) $N > part2 & wait
awk '{ s += $1 } END { printf "pi ~= %.10f with %d terms on %d cores\n", s, N, cores }' N=$N cores="$SLURM_CPUS_PER_TASK" part1 part2
