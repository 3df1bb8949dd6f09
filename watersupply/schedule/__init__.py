"""Pump schedules against a time-of-use electricity tariff (the 同价 lever).

:func:`optimise_schedule` decides, for every duty pump, whether it runs in each
hour of a repeating day, to minimise the daily energy cost under a tariff
(:mod:`watersupply.tariff`) while every demand node keeps its service head, every
tank stays within its levels and ends the day at or above its start level, no
pump starts more than N times a day and standby pumps stay standby. A MILP over
a mass-balance surrogate (:mod:`.surrogate`, HiGHS) proposes a schedule; a full
EPANET run repeated over several days (:mod:`.evaluate`) verifies it, and the
surrogate is refitted and tightened until EPANET agrees. :mod:`.output` writes
the files, charts, the cost to serve per settlement and the report.
"""

from .evaluate import check_day, day_energy, pump_controls, scheduled_model, starts_per_day
from .optimise import ScheduleResult, optimise_schedule, pump_table
from .surrogate import Surrogate, build_surrogate, solve_schedule

__all__ = ["ScheduleResult", "optimise_schedule", "pump_table", "Surrogate", "build_surrogate", "solve_schedule",
           "scheduled_model", "pump_controls", "day_energy", "check_day", "starts_per_day"]
