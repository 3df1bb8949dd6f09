"""Pipe and valve-segment criticality: who loses water when one element is lost for a whole run.

For every pipe (or every valve-isolation segment) :func:`pipe_criticality` answers
"what if it is out of service for the whole run?" under pressure-dependent demand
(the PDD options of :func:`watersupply.model.to_wntr`):

- ``people_without_water`` — population at demand nodes without water at any
  report hour;
- ``person_hours_without_water`` — population × hours without water;
- ``demand_not_served_m3`` — expected minus delivered demand over the run;
- ``settlements_affected`` — ids (and names) of settlements with people without water;
- ``worst_pressure_drop_m`` — the largest pressure drop against the baseline at
  a demand node that is still served (NaN where not computed, see below).

A node is **without water** at a report hour when its pressure is below the PDD
minimum pressure (the rule of :func:`watersupply.metrics.without_water`) **or**
when the links open at that hour leave it cut off from every source (plant
reservoir or tank) by the rules of :mod:`watersupply.topology` (pumps, check-valve
pipes and PRV/PSV/FCV conduct one way only). The second clause is needed because EPANET reports
meaningless pressures at cut-off nodes (values from -13,000 m to +1,500 m were
seen on the Tonghui model); without it the answer for a cut-off node would be
numerical noise. Demand not served counts, per node and report hour,
``max(0, expected - delivered)`` — EPANET's PDD barrier lets a node take a hair
more than its demand — and the whole expected demand of cut-off nodes. Hours
are integrated over the report intervals (the state at a report time holds until
the next one), so a node dry for a whole 24 h run counts 24 person-hours per
person.

The answers are those of the usual recipe (:func:`reference_criticality`: copy
the model, close the element, run WNTR's ``EpanetSimulator``), obtained much
faster by four means:

1. **Topology.** Closing a link that is a bridge of the open-link graph (pumps
   count as links, sources are plant reservoirs and tanks) whose far side holds
   no source leaves that side dry for the whole run; its people and demand are
   counted without solving anything, and the rest of the network keeps its
   baseline status (it only loses demand). The same rule applies to segments.
   If the far side still holds a tank the closure is simulated: a zone cut off
   from the plant drains its tank and may or may not run dry. For these
   topology answers the worst pressure drop elsewhere is **not computed** (NaN):
   losing a dead-end part only lowers flows elsewhere.
2. **A reduced model as a screen.** Dead-end trees of plain pipes are collapsed
   into their root node (their demands moved there). While every demand node
   stays at or above the PDD required pressure and connected to a source, that
   model is hydraulically equivalent to the full one, and a tree's pressures
   follow from its root head; each step of a reduced run checks exactly that
   (root heads against the head each tree needs, with a margin). A closure that
   passes the screen has nobody without water and no demand lost; its pressure
   drop comes from the reduced run. A closure that fails it — the interesting
   ones — is solved on the full model.
3. **Series chains.** Links joined through junctions with no demand and only two
   links form a chain; losing one or several links of a chain leaves the same
   network (the rest of the chain hangs dead-ended and carries no flow), so such
   closures share one solve (``method`` ``series``, the message names the element
   solved). Junctions in the chain have no demand, no controls watch them and no
   tank sits between members, so the closures are hydraulically the same network.
   Use ``shortcuts=False`` to solve every element on its own.
4. **EPANET kept open in memory.** The full and reduced models are opened once
   per worker through the EPANET toolkit (WNTR's bundled EPANET 2.2 library by
   default, the same engine as the recipe, so answers agree; owa-epanet's 2.3
   library on request). Each closure sets the links' initial status to closed,
   re-initialises hydraulics (flows included, so answers never depend on which
   closure ran before) and steps through the run, reading pressures at report
   times. EPANET 2.3 solves about twice as fast but answers differently where
   tanks run dry, and lets a pump keep drawing from a suction node cut off from
   everything; 2.2 is the default for that reason (``benchmarks/criticality.py``
   measures both). Its library is loaded by path with ctypes: it shares the
   soname ``libepanet2.so`` with WNTR's, so owa-epanet's SWIG module cannot be
   imported once WNTR's library is loaded in a process.

**Every answer solved.** Where a step of a full solve does not balance, or EPANET
cannot solve it at all (error 110) — typically tanks behind the cut drain dry and
leave islands — the part cut off from every source *with water* (by the links open
at that step; a tank at its lowest level counts as no source) is taken out of the
solve and the step is solved again; from then on every step does so while the part
stays cut off (``method`` ``full+cutoff``). Taking the part out means: its demand
is set to zero, pumps drawing from it (or discharging into a closed dead end) are
held off with their controls, and — only where EPANET still fails or cannot balance — its junctions
get a tiny emitter that ties their head to their elevation (the part can be left
with no fixed head, "ill-conditioned"; emitters are not used otherwise, since EPANET
2.2 lets water flow in through them at negative pressure). Its nodes are counted without water at those
steps whatever EPANET shows for them: with their demand gone EPANET reopens an
empty tank's outlet and would show them at the tank's head (answers that counted
them served came out a third low on Tonghui's M00006). Where EPANET 2.2 still
cannot balance or fails, the closure is solved again with EPANET 2.3 (``method``
``full-2.3``; the message keeps what 2.2 said) — a last resort: the owa-epanet 2.3
build lets an empty tank keep delivering water (seen on Tonghui's R1 with M00002
closed), so such answers can understate the loss. A model whose options say
UNBALANCED STOP (WNTR's Net6) makes EPANET halt at the first step that does not
balance, before the cut-off part can be taken out; such a closure is solved again
with at least 1,000 trials and UNBALANCED CONTINUE 100 (``method`` gets ``+retry``,
the message says where the model's options halted it); steps that balance are
solved exactly as before. Only a closure neither engine
solves keeps status ``unconverged`` or ``error``. On Tonghui every one of the 2,277
pipes is solved on EPANET 2.2; the 30-pipe sample with the ten top-ranked agrees with
the recipe within 1 % in people and person-hours (``tests/test_criticality.py``).

**Units.** The working INP files are written in SI (LPS: m, L/s) whatever the model's own
INP units, since pressures, heads and demand deficits are read from EPANET and compared
with thresholds in metres: a GPM model (WNTR's Net6) once had its pressures in psi read as
metres (``tests/test_criticality_units.py``).

**Check valves.** A check-valve pipe cannot be given a status in EPANET (error
207): a closure makes it a plain closed pipe for the run (:class:`watersupply.engine.Project`).

**Sanity report.** The ``message`` column lists, by element and hour, what EPANET
warned about (code, steps and hours), the cut-off part taken out, empty tanks and
negative pressures at supplied demand nodes.

Work is spread over local processes (``workers``) or a Dask distributed cluster
(``scheduler``); each worker opens its own EPANET projects from INP text shipped
with the task.

Modules: :mod:`.closures` (what each element closes), :mod:`.plan` (model, baseline,
reduced model), :mod:`.graph` (answers from the graph alone), :mod:`.solver` (the
EPANET solves of one worker), :mod:`.parallel` (processes and Dask), :mod:`.sweep`
(:func:`pipe_criticality`), :mod:`.reference` (the recipe) and :mod:`.output` (table,
layer, files). The EPANET toolkit is reached through :mod:`watersupply.engine` and the
topology rules come from :mod:`watersupply.topology`.
"""

from __future__ import annotations

from ..engine import ENGINES
from .closures import closure_sets
from .output import CONSEQUENCE_COLUMNS, criticality_layer, write_criticality
from .reference import reference_criticality
from .sweep import pipe_criticality

__all__ = [
    "ENGINES",
    "CONSEQUENCE_COLUMNS",
    "pipe_criticality",
    "reference_criticality",
    "closure_sets",
    "criticality_layer",
    "write_criticality",
]
