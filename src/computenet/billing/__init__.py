"""Rating usage into money. The full price book and ledger come in billing proper."""
