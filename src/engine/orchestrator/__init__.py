"""The Prefect adapter: the only part of the engine that talks to Prefect.

runs         create, resume, cancel and suspend flow runs
deployments  register one deployment per implemented process
worker       execute flow runs inside one long-lived process
"""
