"""The reference billing simulator (`hotline billing-sim`), also the tests' upstream."""

from hotline.balance.sim.app import SIM, Simulator, create_sim_app

__all__ = ["SIM", "Simulator", "create_sim_app"]
