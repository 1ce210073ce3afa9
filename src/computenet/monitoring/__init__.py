"""Job monitoring and efficiency analysis.

``agent.py`` is the per-job sampling agent. It is deliberately a single,
standard-library-only file that also runs under Python 3.6: the platform
writes its source text into the job directory and starts it with the
compute node's system ``python3``, so nothing here may import it at package
import time or make it depend on the rest of ComputeNet.
"""
