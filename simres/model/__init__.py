"""The SimPy model: the world a scenario builds, and the drivers that run requests through it.

Owns the network (links with latency and loss), services (instances, workers, queues, load
balancing), the job (one try in flight, itself a SimPy event), the call driver that applies
a policy stack to each logical call, client populations and the fault injector. It asks the
policy objects of :mod:`simres.policies` what to do and records every request and try into
:class:`simres.metrics.recorder.Recorder`. May import the foundations (``errors``,
``outcomes``, ``dists``, ``rng``, ``clock``), :mod:`simres.policies`, :mod:`simres.metrics`
and :mod:`simres.scenario`; never :mod:`simres.experiments`, :mod:`simres.reporting`,
:mod:`simres.realtime` or :mod:`simres.cli`.
"""
