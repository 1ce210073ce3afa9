"""Pure domain types: job states, resource requests, sbatch parsing, money."""
