"""A stand-in for Orange Connex (OC): its OAuth and look-up APIs over a seeded world, with
OC's limits and bad habits on demand, and a sender that fires realistic callbacks.

In process: `app.create_app(SimulatorConfig(...))` (a Starlette app; `app.simulator_of(app)`
gives its `Simulator`: world, auth, faults, stats), `data.World(seed)` and
`World.next_callbacks(n, kind, status)` for callbacks without HTTP, `sender.send_callbacks(...)`.
From the shell: `gateway simulate serve` and `gateway simulate send` (see cli.py).
"""
