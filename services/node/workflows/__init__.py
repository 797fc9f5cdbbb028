"""The Convention's procedures as the node's functional core, one module per procedure.

Each holds a pure state machine, ``apply(state, event)``, and a pure ``decide(state, step) ->
Decision`` taking one message (:class:`~services.node.workflows.steps.Step`): who may send it to
whom, the new state to save and the effects (follow-up messages, audit notes, alerts), or
:class:`~services.node.workflows.errors.IllegalTransition` saying why it is refused. Deadlines
come in as ``tick(..., now)``. Nothing here reads a store or a clock; ``casework.py`` loads the
states, calls ``decide`` and saves what it returns.

- ``tracing``: Art. XIII.3 (markings of Art. VI)
- ``transfers``: Art. IX
- ``controlled_delivery``: Art. XVIII
- ``confidentiality``: Art. XII (the consent record of a received message, forward and export)
"""
