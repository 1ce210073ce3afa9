"""Ledger entry kinds in the words a user reads on a bill (kept free of the database so `cnet` starts fast)."""

KIND_WORDS = {"topup": "top-up", "hold": "hold", "post": "charge", "void": "release", "charge": "charge",
              "refund": "refund", "transfer": "transfer", "adjustment": "adjustment"}
