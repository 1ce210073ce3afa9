#!/bin/bash
#SBATCH --job-name=long-running --time=30
echo "a long simulation starts"
sleep 600
