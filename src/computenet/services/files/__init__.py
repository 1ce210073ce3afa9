"""Files of users and jobs: workspaces, job paths, staging inputs and outputs across clusters."""
