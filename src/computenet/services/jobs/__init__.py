"""Jobs from submission to their end: accepting, submitting, polling, acting on, listing and reconciling them."""
