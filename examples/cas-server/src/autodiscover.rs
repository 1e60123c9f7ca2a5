//! Autodiscover (Outlook POX) and Mozilla autoconfig (issue 7).
