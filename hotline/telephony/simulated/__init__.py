"""The simulated phone network: the embedded default's stand-in for Twilio and the phones.

It runs the hotline's TwiML, signs its webhooks like Twilio, and lets a browser tab (the dev
phone) or a test be the handset. Never used in production (the configuration refuses it there).
"""
