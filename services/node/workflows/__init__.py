"""The Convention's procedures as pure state machines (functional core): ``apply(state, event)
-> (state, effects)``; the node stores the state and carries out the effects."""
