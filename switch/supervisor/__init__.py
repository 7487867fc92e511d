"""The supervisor process (asyncio): it composes and runs everything that is not a worker.

supervisor.py  Supervisor and serve_switch: workers, dial-plan reload, presence, records, web, edge
settings.py    Settings: the settings file, validated once at start
voicemail.py   VoicemailBox: voicemails and dictations filed by the workers

May import every other switch package except switch.worker and switch.cli.
"""
