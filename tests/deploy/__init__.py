"""Checks of the deployment artefacts: the Dockerfile and the Helm chart under helm/."""
