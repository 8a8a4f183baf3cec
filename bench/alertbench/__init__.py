"""Hot-path benchmark: fraud alerts against the floor flow, on one running `fiflow up` stack.

Modules: `load` (the alert load generator), `floor` (the floor flow and its workers),
`measure` (latency percentiles, CPU time per process, one measured step), `knee` (stepping
the rate to the knee), `accounting` (history events and Temporal Cloud billable actions),
`report` (one table and one JSON line), `cli` (the command line). Run it with
`python -m bench.alertbench` from the repository root.
"""
