<#-- twostep: keycloak.v2's login-recovery-authn-code-config.ftl with an explanation of what backup
     codes are for and how they are used (once each, in numbered order), copy / download as text /
     print with visible feedback, and the "I saved them" confirmation inside the form.
     Form fields (generatedRecoveryAuthnCodes, generatedAt, userLabel, logout-sessions) are the parent's. -->
<#import "template.ftl" as layout>
<#import "password-commons.ftl" as passwordCommons>
<@layout.registrationLayout; section>
<!-- template: login-recovery-authn-code-config.ftl (twostep) -->
<#if section = "header">
    ${msg("recovery-code-config-header")}
<#elseif section = "form">
    <div id="twostep-codes-intro" class="twostep-intro">
        <p>${msg("twostepCodesIntro")}</p>
        <p>${msg("twostepCodesOrder")}</p>
    </div>

    <div class="${properties.kcRecoveryCodesWarning!}" role="note" aria-labelledby="twostep-codes-warning-title">
        <div class="${properties.kcAlertIconClass!}">
            <i class="fas fa-fw fa-bell" aria-hidden="true"></i>
        </div>
        <p class="${properties.kcAlertTitleClass!}" id="twostep-codes-warning-title">
            ${msg("recovery-code-config-warning-title")}
        </p>
        <div class="${properties.kcAlertDescriptionClass!}">
            <p>${msg("recovery-code-config-warning-message")}</p>
        </div>
    </div>

    <div class="${properties.kcPanelClass!}">
        <div class="${properties.kcPanelMainClass!}">
            <div class="${properties.kcPanelMainBodyClass!}">
            <ol id="kc-recovery-codes-list" class="${properties.kcListClass!}" aria-label="${msg("recovery-code-config-header")}">
                <#list recoveryAuthnCodesConfigBean.generatedRecoveryAuthnCodesList as code>
                    <li>${code[0..3]}-${code[4..7]}-${code[8..]}</li>
                </#list>
            </ol>
            </div>
        </div>
    </div>

    <div class="twostep-actions">
        <button id="copyRecoveryCodes" class="${properties.kcButtonSecondaryClass!}" type="button" onclick="twostepCopyCodes()">
            <i class="fas fa-copy" aria-hidden="true"></i> ${msg("recovery-codes-copy")}
        </button>
        <button id="downloadRecoveryCodes" class="${properties.kcButtonSecondaryClass!}" type="button" onclick="twostepDownloadCodes()">
            <i class="fas fa-download" aria-hidden="true"></i> ${msg("twostepCodesDownload")}
        </button>
        <button id="printRecoveryCodes" class="${properties.kcButtonSecondaryClass!}" type="button" onclick="window.print()">
            <i class="fas fa-print" aria-hidden="true"></i> ${msg("recovery-codes-print")}
        </button>
    </div>
    <p id="twostep-codes-status" class="twostep-status" role="status" aria-live="polite"></p>

    <form action="${url.loginAction}" class="${properties.kcFormClass!}" id="kc-recovery-codes-settings-form" method="post">
        <input type="hidden" name="generatedRecoveryAuthnCodes" value="${recoveryAuthnCodesConfigBean.generatedRecoveryAuthnCodesAsString}" />
        <input type="hidden" name="generatedAt" value="${recoveryAuthnCodesConfigBean.generatedAt?c}" />
        <input type="hidden" id="userLabel" name="userLabel" value="${msg("recovery-codes-label-default")}" />

        <div class="${properties.kcCheckboxClass!}">
            <input class="${properties.kcCheckboxInputClass!}" type="checkbox" id="kcRecoveryCodesConfirmationCheck" name="kcRecoveryCodesConfirmationCheck"
                   onchange="document.getElementById('saveRecoveryAuthnCodesBtn').disabled = !this.checked;" />
            <label class="${properties.kcCheckboxLabelClass!}" for="kcRecoveryCodesConfirmationCheck">${msg("twostepCodesConfirm")}</label>
        </div>

        <@passwordCommons.logoutOtherSessions/>

        <div class="${properties.kcFormActionGroupClass!}">
        <#if isAppInitiatedAction??>
            <input type="submit"
            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonLargeClass!}"
            id="saveRecoveryAuthnCodesBtn" value="${msg("recovery-codes-action-complete")}"
            disabled
            />
            <button type="submit"
                class="${properties.kcButtonClass!} ${properties.kcButtonLinkClass!}"
                id="cancelRecoveryAuthnCodesBtn" name="cancel-aia" value="true">${msg("recovery-codes-action-cancel")}
            </button>
        <#else>
            <input type="submit"
            class="${properties.kcButtonClass!} ${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!} ${properties.kcButtonLargeClass!}"
            id="saveRecoveryAuthnCodesBtn" value="${msg("recovery-codes-action-complete")}"
            disabled
            />
        </#if>
        </div>
    </form>

    <script>
        <#outputformat "JavaScript">
        function twostepCodeLines() {
            const items = document.getElementById("kc-recovery-codes-list").getElementsByTagName("li");
            const lines = [];
            for (let i = 0; i < items.length; i++) {
                lines.push("#" + (i + 1) + "  " + items[i].innerText.trim());
            }
            return lines;
        }

        function twostepStatus(text) {
            document.getElementById("twostep-codes-status").textContent = text;
        }

        function twostepCopyCodes() {
            const text = twostepCodeLines().join("\n");
            const fallback = () => {
                const area = document.createElement("textarea");
                area.value = text;
                document.body.appendChild(area);
                area.select();
                document.execCommand("copy");
                document.body.removeChild(area);
            };
            if (navigator.clipboard && window.isSecureContext) {
                navigator.clipboard.writeText(text).catch(fallback);
            } else {
                fallback();
            }
            twostepStatus(${msg("twostepCodesCopied")?c});
        }

        function twostepDownloadCodes() {
            const body =
                ${msg("recovery-codes-download-file-header")?c} + "\r\n\r\n" +
                twostepCodeLines().join("\r\n") + "\r\n\r\n" +
                ${msg("twostepCodesFileOrder")?c} + "\r\n" +
                ${msg("recovery-codes-download-file-description")?c} + "\r\n\r\n" +
                ${msg("recovery-codes-download-file-date")?c} + " " + new Date().toLocaleString() + "\r\n";
            const link = document.createElement("a");
            link.setAttribute("href", "data:text/plain;charset=utf-8," + encodeURIComponent(body));
            link.setAttribute("download", ${msg("twostepCodesFileName")?c});
            link.style.display = "none";
            document.body.appendChild(link);
            link.click();
            document.body.removeChild(link);
            twostepStatus(${msg("twostepCodesDownloaded")?c});
        }
        </#outputformat>
    </script>
</#if>
</@layout.registrationLayout>
