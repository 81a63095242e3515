"""Page strings in Chinese (the default) and English (`?lang=en`)."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("学习档案", "StudyLedger"),
    "board": ("学分排名", "Ranking board"),
    "rank": ("名次", "Rank"),
    "name": ("姓名", "Name"),
    "unit": ("单位", "Unit"),
    "score": ("学分", "Score"),
    "requirement_line": ("本周期要求", "This period requires"),
    "org_picker": ("选择单位", "Choose a unit"),
    "show": ("查看", "Show"),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "no_entries": ("暂无记录", "No entries"),
    "archive": ("学习档案", "Learning archive"),
    "category": ("类别", "Category"),
    "raw": ("原始", "Raw"),
    "counted": ("计入", "Counted"),
    "excess": ("超出上限", "Above cap"),
    "cap": ("上限", "Cap"),
    "requirements": ("达标要求", "Requirements"),
    "required": ("要求", "Required"),
    "actual": ("实际", "Actual"),
    "shortfall": ("差额", "Shortfall"),
    "met": ("已达标", "Met"),
    "short": ("未达标", "Short"),
    "annual_checks": ("年度审核", "Annual checks"),
    "year": ("年度", "Year"),
    "status": ("状态", "Status"),
    "promotion": ("晋升", "Promotion"),
    "eligible": ("可晋升", "Eligible"),
    "make_up_required": ("需补足学分", "Make-up required"),
    "credits_per_year": ("各年度学分", "Credits per year"),
    "audit_trail": ("档案记录", "Audit trail"),
    "occurred": ("发生时间", "Occurred"),
    "type": ("类型", "Type"),
    "effect": ("学分影响", "Credit effect"),
    "hash": ("哈希", "Hash"),
    "removed": ("已撤销", "removed"),
    "voided_by": ("被撤销于", "voided by"),
    "certificate": ("学时证明书", "Study-hour certificate"),
    "classes": ("脱产培训", "Classes"),
    "courses": ("网络课程", "Online courses"),
    "hours": ("学时", "Hours"),
    "date": ("日期", "Date"),
    "kind": ("类别", "Kind"),
    "centralized_hours": ("集中培训学时", "Centralized hours"),
    "online_hours": ("网络学习学时", "Online hours"),
    "required_course_hours": ("必修课学时", "Required-course hours"),
    "total_hours": ("合计学时", "Total hours"),
    "issued_on": ("签发日期", "Issued on"),
    "verification_code": ("验证码", "Verification code"),
    "verify_at": ("验证网址", "Verify at"),
    "print": ("打印 / 另存为 PDF", "Print / save as PDF"),
    "verify_certificate": ("证明书验证", "Verify a certificate"),
    "code": ("验证码", "Code"),
    "verify": ("验证", "Verify"),
    "valid": ("验证通过：与当前档案一致", "Valid: it matches the current record"),
    "changed": ("档案已变更：证明书签发后记录有更正（如撤销），请重新开具",
                "The record has changed since this certificate was issued (for example a "
                "later void); ask for a new one"),
    "unknown_code": ("无法识别的验证码", "This code is not recognized"),
    "compliance": ("达标情况", "Compliance"),
    "learners_in_scope": ("范围内人数", "Learners in scope"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "sort_by": ("排序", "Sort by"),
    "login": ("使用密钥登录", "Sign in with an API key"),
    "api_key": ("API 密钥", "API key"),
    "sign_in": ("登录", "Sign in"),
    "error": ("出错了", "Something is wrong"),
    "policy": ("政策", "Policy"),
    "period": ("周期", "Period"),
    "switch_lang": ("English", "中文"),
    "basic": ("基础学分", "Basic"),
    "comprehensive": ("综合学分", "Comprehensive"),
    "self_study": ("在职自学", "Self-study"),
    "theory": ("理论成果", "Theory"),
    "performance": ("工作实绩", "Performance"),
    "org": ("单位", "Org"),
    "learner": ("学员", "Learner"),
}


def translator(lang: Lang) -> dict[str, str]:
    index = 0 if lang == "zh" else 1
    return {key: pair[index] for key, pair in STRINGS.items()}


def pick_lang(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"
