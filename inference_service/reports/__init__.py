"""Public hazard reports (隐患随手拍 / 举报): report links an organisation publishes, reports sent through them, and
what the organisation found when it checked each one."""

from inference_service.reports.store import REPORT_STATUSES, NewReport, ReportConflict, Reports

__all__ = ["REPORT_STATUSES", "NewReport", "ReportConflict", "Reports"]
