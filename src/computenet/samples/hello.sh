#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --time=00:05:00
#SBATCH --output=hello-%j.out
echo "Hello from job $SLURM_JOB_ID ($SLURM_JOB_NAME) on $(hostname)"
echo "Working directory: $(pwd)"
sleep 2
echo "Done at $(date -u +%H:%M:%S)"
