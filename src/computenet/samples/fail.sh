#!/bin/bash
#SBATCH --job-name=fails-on-purpose --time=5
echo "about to fail"
echo "missing-input.dat: no such file (this job fails on purpose)" >&2
exit 3
